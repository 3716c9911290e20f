"""Evaluation metrics of generated danmaku."""

from __future__ import annotations

import collections
import random
from typing import Mapping, Sequence

import numpy as np
from sacrebleu.metrics import BLEU
from sklearn.feature_extraction.text import TfidfVectorizer


def scene_mentions(text: str, lexicons: Mapping[str, Sequence[str]]) -> set[str]:
    """The scenes whose lexicon has a phrase inside text."""
    return {scene for scene, phrases in lexicons.items() if any(p in text for p in phrases)}


def relation(generated: Sequence[tuple[str, Sequence[str]]], lexicons: Mapping[str, Sequence[str]]) -> dict:
    """Controlled world only: of the comments that mention some scene's phrase, the share that
    mention the frame's true scene (chance: 1/K). generated: (true scene, comments) per frame.

    Returns {"relation", "chance", "mentioning", "total", "confusion": {true: {mentioned: count}}}.
    """
    right = mentioning = total = 0
    confusion: dict[str, dict[str, int]] = {}
    for scene, comments in generated:
        for c in comments:
            total += 1
            found = scene_mentions(c, lexicons)
            if not found:
                continue
            mentioning += 1
            right += scene in found
            row = confusion.setdefault(scene, {})
            for f in found:
                row[f] = row.get(f, 0) + 1
    return {"relation": right / mentioning if mentioning else 0.0, "chance": 1.0 / len(lexicons),
            "mentioning": mentioning, "total": total, "confusion": confusion}


# ---------------------------------------------------------------------------------------------
# Table 1 of the paper (section 3.2)

# Character n-gram orders behind Fluency and Diversity. The paper does not print n; its
# len(t) weighting implies tokens of several lengths, so we use 1..4, the orders of BLEU-4.
NGRAM_ORDERS = (1, 2, 3, 4)


def ngrams(text: str, orders: Sequence[int] = NGRAM_ORDERS) -> set[str]:
    """T_s: the set of character n-grams of text, for every n in orders."""
    return {text[i:i + n] for n in orders for i in range(len(text) - n + 1)}


def train_ngrams(comments, orders: Sequence[int] = NGRAM_ORDERS) -> set[str]:
    """T: every n-gram of the human comments of the training set."""
    out: set[str] = set()
    for c in comments:
        out |= ngrams(c, orders)
    return out


def fluency_of(text: str, vocabulary: set[str], orders: Sequence[int] = NGRAM_ORDERS) -> float:
    """sum_{t in T_s} [t in T] len(t) / sum_{t in T_s} len(t); an empty comment scores 0."""
    ts = ngrams(text, orders)
    total = sum(len(t) for t in ts)
    return sum(len(t) for t in ts if t in vocabulary) / total if total else 0.0


def fluency(comments, vocabulary: set[str], orders: Sequence[int] = NGRAM_ORDERS) -> float:
    """Mean Fluency over comments."""
    comments = list(comments)
    return sum(fluency_of(c, vocabulary, orders) for c in comments) / len(comments) if comments else 0.0


def diversity_of(comments: Sequence[str], orders: Sequence[int] = NGRAM_ORDERS) -> float:
    """1 - mean over pairs i < j of 2|T_i ∩ T_j| / (|T_i| + |T_j|), for the comments of one frame.

    Two empty comments are identical (similarity 1). Fewer than two comments: nan.
    """
    sets = [ngrams(c, orders) for c in comments]
    sims = []
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            size = len(sets[i]) + len(sets[j])
            sims.append(2 * len(sets[i] & sets[j]) / size if size else 1.0)
    return 1.0 - sum(sims) / len(sims) if sims else float("nan")


def diversity(per_frame: Sequence[Sequence[str]], orders: Sequence[int] = NGRAM_ORDERS) -> float:
    """Mean Diversity over frames with at least two comments."""
    vals = [diversity_of(cs, orders) for cs in per_frame if len(cs) >= 2]
    return sum(vals) / len(vals) if vals else float("nan")


def char_bleu4(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Mean sentence-level character BLEU-4 in [0, 1] (sacrebleu: tokenize="char", which also drops
    spaces; smooth_method="exp", NIST's geometric smoothing: the k-th order with no match counts
    1/2^k instead of 0; effective_order, so a comment shorter than 4 characters is scored on the
    orders it has: danmaku like "哈哈" are common). references[i] are hypothesis i's references
    (3 in the paper). An empty hypothesis scores 0."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference sets")
    if not hypotheses:
        return float("nan")
    bleu = BLEU(tokenize="char", smooth_method="exp", effective_order=True)
    return sum(bleu.sentence_score(h, list(r)).score for h, r in zip(hypotheses, references)) / 100 / len(hypotheses)


def rank_of(score: float, negatives: Sequence[float]) -> int:
    """1 + the number of negatives scoring at least as high (ties count against the model)."""
    return 1 + sum(1 for s in negatives if s >= score)


def ranking_metrics(ranks: Sequence[int]) -> dict:
    """Recall@1/5/10, mean rank and mean reciprocal rank of the ground-truth comments."""
    n = len(ranks)
    if not n:
        return {k: float("nan") for k in ("R@1", "R@5", "R@10", "MR", "MRR")}
    return {"R@1": sum(r <= 1 for r in ranks) / n, "R@5": sum(r <= 5 for r in ranks) / n,
            "R@10": sum(r <= 10 for r in ranks) / n, "MR": sum(ranks) / n, "MRR": sum(1 / r for r in ranks) / n}


def build_candidates(frames_comments: Sequence[Sequence[str]], pool: Sequence[str], seed: int = 0, total: int = 100,
                     n_truth: int = 5, n_plausible: int = 20, n_popular: int = 20) -> list[dict]:
    """LiveBot's ranking candidates (Ma et al. 2019) for each test key frame.

    frames_comments[f]: the human comments of test frame f; pool: the comments negatives come
    from (the training set's, with repeats: repeats make a comment popular). For each frame:
    up to n_truth of its own comments (the ground truth), then, never a comment of that frame,
    the n_plausible pool comments most similar to its ground truth (cosine of character 1-2-gram
    TF-IDF against their mean; only those sharing some n-gram), the n_popular most frequent pool comments, and random pool
    comments up to `total`. Returns {"candidates", "kinds", "truth": bool mask} per frame.
    """

    counts = collections.Counter(c for c in pool if c)
    unique = sorted(counts)
    by_popularity = sorted(unique, key=lambda c: (-counts[c], c))
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), lowercase=False).fit(unique)
    pool_vecs = vectorizer.transform(unique)
    rng = random.Random(seed)
    out = []
    for comments in frames_comments:
        own = sorted(set(comments))
        truth = rng.sample(own, min(n_truth, len(own)))
        taken = set(own)
        chosen: list[tuple[str, str]] = [(c, "truth") for c in truth]
        if truth:
            query = np.asarray(vectorizer.transform(truth).mean(axis=0))
            sims = np.asarray(pool_vecs @ query.T).ravel()
            for i in np.argsort(-sims, kind="stable"):
                if sum(k == "plausible" for _, k in chosen) >= n_plausible:
                    break
                if sims[i] <= 0:           # nothing in common: not plausible, left to the random draw
                    break
                if unique[i] not in taken:
                    chosen.append((unique[i], "plausible"))
                    taken.add(unique[i])
        for c in by_popularity:
            if sum(k == "popular" for _, k in chosen) >= n_popular:
                break
            if c not in taken:
                chosen.append((c, "popular"))
                taken.add(c)
        rest = [c for c in unique if c not in taken]
        chosen += [(c, "random") for c in rng.sample(rest, min(len(rest), max(0, total - len(chosen))))]
        out.append({"candidates": [c for c, _ in chosen], "kinds": [k for _, k in chosen],
                    "truth": [k == "truth" for _, k in chosen]})
    return out


def frame_ranks(scores: Sequence[float], truth: Sequence[bool]) -> list[int]:
    """The rank of each ground-truth candidate among itself and the negatives (the other ground
    truths are left out, so every ground truth can reach rank 1)."""
    negatives = [s for s, t in zip(scores, truth) if not t]
    return [rank_of(s, negatives) for s, t in zip(scores, truth) if t]
