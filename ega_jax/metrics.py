"""Evaluation metrics of generated danmaku."""

from __future__ import annotations

import collections
import math
import random
import re
import unicodedata
from typing import Mapping, Sequence

import numpy as np


def scene_mentions(text: str, lexicons: Mapping[str, Sequence[str]]) -> set[str]:
    """The scenes whose lexicon has a phrase inside text."""
    return {scene for scene, phrases in lexicons.items() if any(p in text for p in phrases)}


def phrases_in(text: str, lexicons: Mapping[str, Sequence[str]]) -> set[str]:
    """The lexicon phrases inside text (any scene's)."""
    return {p for phrases in lexicons.values() for p in phrases if p in text}


def relation(generated: Sequence[tuple[str, Sequence[str]]], lexicons: Mapping[str, Sequence[str]]) -> dict:
    """Controlled world only: how the comments of each frame name scenes. generated: (true scene,
    comments) per frame. A comment *names* a scene when it holds a phrase of that scene's lexicon; it is
    *right* when the true scene is the only scene it names (naming every scene is wrong) and *wrong* when
    it names any other scene.

    Returns {"relation": right / naming (nan when nothing is named: n/a, not 0), "naming": naming / all
    comments, "right_share" and "wrong_share": right and wrong comments / all comments (they add up to
    naming), "phrase_diversity" (see phrase_diversity_counts), "chance" 1/K, the counts "right",
    "mentioning" (naming), "total", "phrase_distinct" and "phrase_uses" (phrase_diversity_counts), and
    "confusion": {true: {named: count}}}. Relation alone can be gamed (keep one naming comment per
    frame); naming and the right / wrong shares catch that.
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
            right += found == {scene}
            row = confusion.setdefault(scene, {})
            for f in found:
                row[f] = row.get(f, 0) + 1
    distinct, used = phrase_diversity_counts([cs for _, cs in generated], lexicons)
    nan = float("nan")
    return {"relation": right / mentioning if mentioning else nan,
            "naming": mentioning / total if total else nan,
            "right_share": right / total if total else nan,
            "wrong_share": (mentioning - right) / total if total else nan,
            "phrase_diversity": distinct / used if used else nan, "phrase_distinct": distinct, "phrase_uses": used,
            "chance": 1.0 / len(lexicons), "right": right, "mentioning": mentioning, "total": total,
            "confusion": confusion}


def phrase_diversity_counts(per_frame: Sequence[Sequence[str]], lexicons: Mapping[str, Sequence[str]]) -> tuple[int, int]:
    """(distinct phrases, phrase uses) summed over frames with two or more phrase uses: per frame, the
    lexicon phrases its naming comments hold, counted once per comment that holds them, and how many of
    those are distinct. Their ratio is the phrase diversity: 1 when no frame repeats a phrase, 1/7 for a
    frame whose seven comments all say "烤肉走起" however decorated (which n-gram Diversity reads as
    diverse)."""
    distinct = used = 0
    for comments in per_frame:
        uses = [p for c in comments for p in phrases_in(c, lexicons)]
        if len(uses) >= 2:
            distinct += len(set(uses))
            used += len(uses)
    return distinct, used


def scene_report(scenes: Sequence[str], per_frame: Sequence[Sequence[str]], lexicons: Mapping[str, Sequence[str]],
                 vocabulary: set[str] | None = None) -> dict:
    """What the studies print per row, for comments per frame and the frames' true scenes: relation,
    naming, right and wrong shares, phrase diversity (see relation), diversity, and fluency against
    vocabulary (the train n-grams) when given."""
    rel = relation(list(zip(scenes, per_frame)), lexicons)
    out = {k: rel[k] for k in ("relation", "naming", "right_share", "wrong_share", "phrase_diversity")}
    out["diversity"] = diversity(per_frame)
    if vocabulary is not None:
        out["fluency"] = fluency([c for cs in per_frame for c in cs], vocabulary)
    return out


def sample_per_frame(per_frame: Sequence[Sequence[str]], n: int, rng: np.random.Generator) -> list[list[str]]:
    """n of each frame's comments (all when fewer), drawn without replacement: the humans' row of the
    studies, beside a model's n comments per frame."""
    return [[cs[i] for i in rng.permutation(len(cs))[:n]] for cs in per_frame]


def format_relation(rel: dict) -> str:
    """The main job's line: relation, naming share and phrase diversity ("n/a" where undefined)."""
    f = lambda v: "n/a" if v != v else f"{v:.3f}"
    return (f"relation {f(rel['relation'])} ({rel['right']} of {rel['mentioning']} scene-naming comments name only "
            f"the true scene; chance {rel['chance']:.2f}), naming share {f(rel['naming'])} ({rel['mentioning']} of "
            f"{rel['total']}), right {f(rel['right_share'])} / wrong {f(rel['wrong_share'])} of all comments, "
            f"phrase diversity {f(rel['phrase_diversity'])}")


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


def overlap(a: set[str], b: set[str]) -> float:
    """2|T_a ∩ T_b| / (|T_a| + |T_b|) of two comments' n-gram sets; two empty comments are identical (1)."""
    size = len(a) + len(b)
    return 2 * len(a & b) / size if size else 1.0


def diversity_of(comments: Sequence[str], orders: Sequence[int] = NGRAM_ORDERS) -> float:
    """1 - mean over pairs i < j of overlap(T_i, T_j), for the comments of one frame. Fewer than two: nan."""
    sets = [ngrams(c, orders) for c in comments]
    sims = [overlap(sets[i], sets[j]) for i in range(len(sets)) for j in range(i + 1, len(sets))]
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
    scores = char_bleu4_each(hypotheses, references)
    return sum(scores) / len(scores) if scores else float("nan")


def char_bleu4_each(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> list[float]:
    """The sentence-level character BLEU-4 of each hypothesis (see char_bleu4), in [0, 1]."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference sets")
    # Here, not at the top: E-GA's generation uses this module's n-grams on accelerator machines
    # that have jax but not sacrebleu or scikit-learn.
    from sacrebleu.metrics import BLEU
    bleu = BLEU(tokenize="char", smooth_method="exp", effective_order=True)
    return [bleu.sentence_score(h, list(r)).score / 100 for h, r in zip(hypotheses, references)]


def _finite(score: float) -> float:
    """A NaN score ranks last, never first."""
    return -math.inf if math.isnan(score) else score


def rank_of(score: float, negatives: Sequence[float]) -> int:
    """1 + the number of negatives scoring at least as high (ties and NaN count against the model)."""
    score = _finite(float(score))
    return 1 + sum(1 for s in negatives if _finite(float(s)) >= score)


def frame_rank(scores: Sequence[float], truth: Sequence[bool]) -> int | None:
    """LiveBot's rank for one test frame: the rank of its best-ranked ground truth among the negatives
    (None for a frame without ground truth)."""
    truths = [_finite(float(s)) for s, t in zip(scores, truth) if t]
    if not truths:
        return None
    return rank_of(max(truths), [s for s, t in zip(scores, truth) if not t])


RANKING = ("R@1", "R@5", "R@10", "MR", "MRR")


def ranking_per_frame(ranks: Sequence[int]) -> dict:
    """{R@1, R@5, R@10, MR, MRR: one value per frame} from one rank per test frame; their means are
    LiveBot's ranking metrics (ranking_metrics; Table 1 bootstraps them over frames)."""
    return {"R@1": [float(r <= 1) for r in ranks], "R@5": [float(r <= 5) for r in ranks],
            "R@10": [float(r <= 10) for r in ranks], "MR": [float(r) for r in ranks],
            "MRR": [1 / r for r in ranks]}


def ranking_metrics(ranks: Sequence[int]) -> dict:
    """Recall@1/5/10, mean rank and mean reciprocal rank over test frames (one rank per frame)."""
    if not len(ranks):
        return {k: float("nan") for k in RANKING}
    return {k: sum(v) / len(ranks) for k, v in ranking_per_frame(ranks).items()}


def normalise_comment(text: str) -> str:
    """What is left of a comment for near-duplicate checks: NFKC, lower case, letters and digits only
    (CJK included), runs of one character cut to two (哈哈哈哈 -> 哈哈)."""
    t = "".join(c for c in unicodedata.normalize("NFKC", text).lower() if c.isalnum())
    return re.sub(r"(.)\1{2,}", r"\1\1", t)


def near_duplicate(a: str, b: str, cover: float = 0.6) -> bool:
    """Whether two comments say the same after normalisation: equal, or the shorter (2+ characters)
    inside the longer and covering at least `cover` of it (小心别烧着了 / 哇小心别烧着了!)."""
    na, nb = normalise_comment(a), normalise_comment(b)
    if na == nb:
        return True
    short, long_ = sorted((na, nb), key=len)
    return len(short) >= 2 and short in long_ and len(short) >= cover * len(long_)


def build_candidates(frames_comments: Sequence[Sequence[str]], contexts: Sequence[Sequence[str]], pool: Sequence[str],
                     seed: int = 0, total: int = 100, n_truth: int = 5, n_plausible: int = 20,
                     n_popular: int = 20) -> list[dict]:
    """LiveBot's ranking candidates (Ma et al. 2019; lancopku/livebot data/add_candidate.py) for each test
    key frame, in LiveBot's order: up to n_truth of the frame's own comments (the ground truth), the
    n_popular most frequent pool comments, the n_plausible pool comments most similar to the frame's
    *context* (the comments of the adjacent seconds, ``livebot_context``; TF-IDF cosine against the context
    as one document), then random pool comments up to `total`.

    frames_comments[f]: the human comments of test frame f; contexts[f]: its context comments; pool: the
    comments negatives come from (the training set's, with repeats: repeats make a comment popular).
    Deliberate differences from add_candidate.py (docs/evaluation.md lists them with their reasons):
    character 1-2-gram TF-IDF (Chinese without a word segmenter); a negative is never one of the frame's
    own comments nor a near-duplicate of a ground truth (``near_duplicate``), and each kind takes the next
    comment until it has its count (LiveBot drops a top-20 comment already chosen without replacing it);
    a pool comment with nothing in common with the context is left to the random draw.
    Returns {"candidates", "kinds", "truth": bool mask} per frame.
    """
    counts = collections.Counter(c for c in pool if c)
    unique = sorted(counts)
    by_popularity = sorted(unique, key=lambda c: (-counts[c], c))
    # Here, not at the top: see char_bleu4_each.
    from sklearn.feature_extraction.text import TfidfVectorizer
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), lowercase=False).fit(unique)
    pool_vecs = vectorizer.transform(unique)
    rng = random.Random(seed)
    out = []
    for comments, context in zip(frames_comments, contexts):
        own = sorted(set(comments))
        truth = rng.sample(own, min(n_truth, len(own)))
        taken = set(own)
        chosen: list[tuple[str, str]] = [(c, "truth") for c in truth]

        def usable(c):   # never the frame's own comment, nor a near-duplicate of a ground truth
            return c not in taken and not any(near_duplicate(c, t) for t in truth)

        def take(ordered, kind, k):
            n = 0
            for c in ordered:
                if n >= k:
                    break
                if usable(c):
                    chosen.append((c, kind))
                    taken.add(c)
                    n += 1

        take(by_popularity, "popular", n_popular)
        context = " ".join(c for c in context if c)
        if context:
            sims = np.asarray(pool_vecs @ vectorizer.transform([context]).T.toarray()).ravel()
            order = [i for i in np.argsort(-sims, kind="stable") if sims[i] > 0]   # nothing in common: random
            take((unique[i] for i in order), "plausible", n_plausible)
        rest = [c for c in unique if c not in taken]
        rng.shuffle(rest)
        take(rest, "random", max(0, total - len(chosen)))
        out.append({"candidates": [c for c, _ in chosen], "kinds": [k for _, k in chosen],
                    "truth": [k == "truth" for _, k in chosen]})
    return out


# LiveBot's context of a test moment (lancopku/livebot data/preprocess.py test_comments): the comments of
# these neighbouring seconds of the same video, in this order, at most CONTEXT_COMMENTS of them.
CONTEXT_OFFSETS = (-1, 1, -2, 2, -3, 3)
CONTEXT_COMMENTS = 5


def livebot_context(second: int, comments_by_second: Mapping[int, Sequence[str]],
                    offsets: Sequence[int] = CONTEXT_OFFSETS, limit: int = CONTEXT_COMMENTS) -> list[str]:
    """The context of a moment: the comments of second+offset for each offset in order, at most limit."""
    out: list[str] = []
    for t in offsets:
        for c in comments_by_second.get(second + t, ()):
            if len(out) == limit:
                return out
            out.append(c)
    return out


# ---------------------------------------------------------------------------------------------
# Intervals: a bootstrap over test frames


def bootstrap_resamples(n_frames: int, resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """(resamples, n_frames) frame indices drawn with replacement; the same draws serve every model
    and metric, so intervals of different models are comparable."""
    return np.random.default_rng(seed).integers(n_frames, size=(resamples, n_frames))


def bootstrap_ratios(num, den, draws: np.ndarray) -> np.ndarray:
    """sum(num) / sum(den) on every bootstrap resample of the frames (draws: bootstrap_resamples); nan
    where a resample has no denominator."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    return _ratios(num[draws].sum(axis=1), den[draws].sum(axis=1))


def _ratios(n: np.ndarray, d: np.ndarray) -> np.ndarray:
    """n / d per resample, nan where a resample has no denominator."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(d > 0, n / np.where(d > 0, d, 1), np.nan)


def group_bootstrap_weights(groups: Sequence, resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """(resamples, n) weights of n items for a bootstrap over their GROUPS (e.g. the videos comments come
    from): each resample draws as many groups as there are, with replacement, and weights every item by
    how often its group was drawn. Items of one group are not independent (one video's comments share its
    content); resampling whole groups keeps that, where bootstrap_resamples would treat them as so many
    independent draws and give intervals too narrow."""
    _, which = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    n_groups = int(which.max()) + 1 if len(which) else 0
    rng = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rng.integers(n_groups, size=n_groups), minlength=n_groups)
                       for _ in range(resamples)]) if n_groups else np.zeros((resamples, 0), int)
    return counts[:, which].astype(float)


def weighted_ratios(num, den, weights: np.ndarray) -> np.ndarray:
    """sum(w * num) / sum(w * den) for every row of weights (group_bootstrap_weights); nan where a row has
    no denominator."""
    return _ratios(weights @ np.asarray(num, float), weights @ np.asarray(den, float))


def percentile_interval(boot: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap values, nan ones left out ((nan, nan) when none is left)."""
    boot = np.asarray(boot, float)
    boot = boot[~np.isnan(boot)]
    if not len(boot):
        return float("nan"), float("nan")
    lo, hi = np.percentile(boot, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def ratio_interval(num: Sequence[float], den: Sequence[float], draws: np.ndarray,
                   level: float = 0.95) -> tuple[float, float, float]:
    """A metric that is sum(num) / sum(den) over frames (a mean over comments, over frames, a share):
    its value and the percentile bootstrap interval over frames."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    value = num.sum() / den.sum() if den.sum() else float("nan")
    return (value, *percentile_interval(bootstrap_ratios(num, den, draws), level))


def paired_ratio_difference(a_num, a_den, b_num, b_den, draws: np.ndarray,
                            level: float = 0.95) -> tuple[float, float, float]:
    """A minus B for a metric that is sum(num) / sum(den) over frames (see ratio_interval), with the
    PAIRED percentile bootstrap interval: each resample takes the same frames for both, so what the
    frames share (an easy frame is easy for both) cancels. Returns (difference, lo, hi)."""
    a_num, a_den, b_num, b_den = (np.asarray(x, float) for x in (a_num, a_den, b_num, b_den))
    ratio = lambda n, d: n.sum() / d.sum() if d.sum() else float("nan")
    value = ratio(a_num, a_den) - ratio(b_num, b_den)
    boot = bootstrap_ratios(a_num, a_den, draws) - bootstrap_ratios(b_num, b_den, draws)
    return (value, *percentile_interval(boot, level))
