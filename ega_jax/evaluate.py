r"""The evaluation harness: the paper's Table 1 (section 3.2) for every trained model in a workdir.

  python -m ega_jax.evaluate --workdir=W [--num_per_frame=10] [--seed=0] [--strategy=greedy] [--out=evaluation]

W is either one model's workdir or a directory of them (W/ega, W/encdec, ...: what
``configs/table1.py`` trains). Every model gets the same test key frames, the same number of
comments per frame and the same seed. Written to W/evaluation/:

  table1.md, table1.csv   model x BLEU-4, Fluency, Diversity, ranking (R@1/5/10, MR, MRR),
                          relation (controlled world), Human Recall (when labels exist)
  case_study.png          Fig. 4: key frames with comments from every model
  confusion.md            per model, true scene x scenes the comments name (controlled world)
  samples.jsonl           the generated comments (plus held-out human ones, model "human"):
                          the labelling app's input (python -m ega_jax.label)
  frames/                 the test key frames the samples point to

Metrics (ega_jax/metrics.py): character BLEU-4 against 3 human comments of the frame drawn at
random (seeded, the same for every model); Fluency and Diversity over character 1..4-grams;
LiveBot ranking of 100 candidates per frame by log P(comment | frame); relation = share of
scene-naming comments that name the frame's true scene (chance 1/K). The "Human" row scores
held-out human comments of the same frames the same way: the ceiling to read the models against.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import os
import pickle
import re
import shutil
import time
import types
import warnings

import jax
import numpy as np
from absl import app, flags

from ega_jax import metrics, reports, runs, zoo
from ega_jax.comment_model import LikelihoodSelected
from ega_jax.data import records, world_recipes

COLUMNS = ("human_recall", "bleu4", "fluency", "diversity", "R@1", "R@5", "R@10", "MR", "MRR", "relation",
           "naming", "right_share", "wrong_share", "phrase_diversity", "novelty", "empty")
# Rows every evaluation adds (--controls): what a model gets without the frame, E-GA without its critic's
# selection (the paper's generation) and each baseline with E-GA's selection budget, picking by its own
# likelihood, so that every model shows with and without the extra draws.
CONTROLS = {"ega_one_draw": "E-GA, one draw per comment", "ngram_lm": "Char n-gram LM (frame-blind)",
            **{f"{n}_selected": f"{zoo.DISPLAY[n]}, selected by its likelihood" for n in zoo.BASELINES}}
DISPLAY = {**zoo.DISPLAY, **CONTROLS}
# Which way a paired difference is "better"; the rest (fluency: a copy scores 1; naming: closest to the
# humans'; novelty) have no better direction.
HIGHER_IS_BETTER = {"human_recall", "bleu4", "diversity", "R@1", "R@5", "R@10", "MRR", "relation", "right_share",
                    "phrase_diversity"}
LOWER_IS_BETTER = {"MR", "wrong_share", "empty"}
BOOTSTRAP = 1000            # resamples of the test frames behind every interval
SELECT_SAMPLES = 8          # draws behind a baseline's likelihood when it selects its comments (ranking: its own)
ROWS = "rows.pkl"           # an evaluation's rows with their per-frame counts (evaluate_seeds reads them back)


def discover(workdir: str) -> list[tuple[str, str]]:
    """(model name, workdir) of every comment model trained in workdir or its direct subdirectories."""

    def model_of(path):
        if not os.path.exists(os.path.join(path, runs.CONFIG)):
            return None
        entry = zoo.by_stage(runs.load_config(path).stage)
        return entry.name if entry else None

    own = model_of(workdir)
    if own:
        return [(own, workdir)]
    found = [(model_of(os.path.join(workdir, d)), os.path.join(workdir, d)) for d in sorted(os.listdir(workdir))
             if os.path.isdir(os.path.join(workdir, d))]
    found = [(k, p) for k, p in found if k]
    rank = {k: i for i, k in enumerate(zoo.ORDER)}
    return sorted(found, key=lambda kp: (rank.get(kp[0], 99), kp[1]))


def human_recall(workdir: str) -> dict:
    """{model: {recall, ci_low, ci_high, labels, escaped}} from W/evaluation/human_recall.csv, which the
    labelling app's `python -m ega_jax.label results --workdir=W` writes; {} before it has run."""
    path = os.path.join(workdir, "evaluation", "human_recall.csv")
    if not os.path.exists(path):
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {r["model"]: {"recall": float(r["human_recall"]), "ci_low": float(r["ci_low"]),
                             "ci_high": float(r["ci_high"]), "labels": int(r["labels"]), "escaped": int(r["escaped"])}
                for r in csv.DictReader(f)}


def add_human_recall(workdir: str, rows: list[dict]) -> None:
    """The human_recall column (and its interval) of every row the labelling app has labels for."""
    recall = human_recall(workdir)
    for row in rows:
        if row["model"] in recall:
            r = recall[row["model"]]
            row["human_recall"], row["human_recall_lo"], row["human_recall_hi"] = r["recall"], r["ci_low"], r["ci_high"]


@dataclasses.dataclass
class EvalSetup:
    """What every model is evaluated against: the same frames, references, candidates and seed."""
    data_dir: str
    test: list[dict]                 # the test key frames, in (video, second) order
    images: np.ndarray
    refs: list[list[str]]            # BLEU references per frame
    held_out: list[list[str]]        # human comments per frame that are not references (the Human row)
    vocabulary: set                  # n-grams of the training comments (Fluency)
    train_set: set                   # the training comments (novelty)
    train_comments: list             # ... with repeats (the frame-blind LM's training text)
    cands: list[dict]                # ranking candidates per frame
    cand_images: np.ndarray
    cand_texts: list[str]
    lexicons: dict | None            # controlled world: scene -> phrases (relation), else None
    draws: np.ndarray                # (BOOTSTRAP, frames) resampled frame indices, shared by every model
    num_per_frame: int
    seed: int
    num_refs: int
    split_note: str = ""             # how the dataset was split (runs.dataset_split_note)


def prepare(found: list[tuple[str, str]], num_per_frame: int, seed: int, num_refs: int, log=print) -> EvalSetup:
    configs = {p: runs.load_config(p) for _, p in found}
    data_dirs = {p: runs.resolve_dataset(c, log=lambda *_: None) for p, c in configs.items()}
    data_dir = data_dirs[found[0][1]]
    for p, d in data_dirs.items():
        if os.path.abspath(d) != os.path.abspath(data_dir):
            raise runs.ConfigError(f"models trained on different datasets: {found[0][1]} on {data_dir}, {p} on {d}")
    test = sorted(records.read_split(data_dir, "test"),
                  key=lambda r: (r["video_id"], r["keyframe_second"]))
    train = records.read_split(data_dir, "train")
    train_comments = [c for r in train for c in r["comments"]]
    images = np.stack([r["image"] for r in test])
    rng = np.random.default_rng(seed)
    refs, held_out = [], []
    for r in test:
        order = rng.permutation(len(r["comments"]))
        refs.append([r["comments"][i] for i in order[:num_refs]])
        held_out.append([r["comments"][i] for i in order[num_refs:num_refs + num_per_frame]])
    cands = metrics.build_candidates([r["comments"] for r in test], ranking_contexts(test, train + test), train_comments,
                                     seed=seed)
    # Every model scores the same (frame, candidate) rows.
    cand_images = images[np.asarray([f for f, c in enumerate(cands) for _ in c["candidates"]], int)]
    cand_texts = [t for c in cands for t in c["candidates"]]
    lexicons = world_recipes.LEXICONS if all(r["scene"] for r in test) else None
    return EvalSetup(data_dir, test, images, refs, held_out, metrics.train_ngrams(train_comments), set(train_comments), train_comments,
                     cands, cand_images, cand_texts, lexicons, metrics.bootstrap_resamples(len(test), BOOTSTRAP, seed),
                     num_per_frame, seed, num_refs, runs.dataset_split_note(data_dir))


def ranking_contexts(frames: list[dict], everything: list[dict]) -> list[list[str]]:
    """Per test frame, LiveBot's context (metrics.livebot_context): the comments its video has at the
    seconds next to the frame's second (-1, +1, -2, +2, -3, +3; at most 5), whichever key frame owns them."""
    timed: dict[str, list[tuple[float, str]]] = {}
    for r in everything:
        timed.setdefault(r["video_id"], []).extend(zip(r["comment_seconds"], r["comments"]))
    by_video: dict[str, dict[int, list[str]]] = {}
    for video, items in timed.items():       # in the order they were sent, whatever record holds them
        seconds = by_video[video] = {}
        for t, c in sorted(items):
            seconds.setdefault(int(t), []).append(c)
    return [metrics.livebot_context(f["keyframe_second"], by_video[f["video_id"]]) for f in frames]


def _with_interval(out: dict, name: str, num, den, draws) -> None:
    """out[name] and its interval; the per-frame (num, den) stay in out["_frames"] for paired differences."""
    out[name], out[name + "_lo"], out[name + "_hi"] = metrics.ratio_interval(num, den, draws)
    out.setdefault("_frames", {})[name] = (np.asarray(num, float), np.asarray(den, float))


def text_metrics(setup: EvalSetup, per_frame: list[list[str]]) -> dict:
    """BLEU-4, Fluency, Diversity, novelty, empty (and relation): each a sum over frames of a per-frame
    numerator over a per-frame denominator, so the bootstrap over frames gives its interval."""
    bleu = [metrics.char_bleu4_each(cs, [setup.refs[i]] * len(cs)) for i, cs in enumerate(per_frame)]
    counts = [len(cs) for cs in per_frame]
    out: dict = {}
    _with_interval(out, "bleu4", [sum(b) for b in bleu], counts, setup.draws)
    _with_interval(out, "fluency", [sum(metrics.fluency_of(c, setup.vocabulary) for c in cs) for cs in per_frame],
                   counts, setup.draws)
    div = [metrics.diversity_of(cs) if len(cs) >= 2 else float("nan") for cs in per_frame]
    _with_interval(out, "diversity", [0.0 if np.isnan(d) else d for d in div], [0 if np.isnan(d) else 1 for d in div],
                   setup.draws)
    _with_interval(out, "novelty", [sum(c not in setup.train_set for c in cs) for cs in per_frame], counts, setup.draws)
    _with_interval(out, "empty", [sum(not c for c in cs) for cs in per_frame], counts, setup.draws)
    if setup.lexicons:
        rel = metrics.relation([(r["scene"], cs) for r, cs in zip(setup.test, per_frame)], setup.lexicons)
        each = [metrics.relation([(r["scene"], cs)], setup.lexicons) for r, cs in zip(setup.test, per_frame)]
        naming = [e["mentioning"] for e in each]
        _with_interval(out, "relation", [e["right"] for e in each], naming, setup.draws)
        _with_interval(out, "naming", naming, counts, setup.draws)
        _with_interval(out, "right_share", [e["right"] for e in each], counts, setup.draws)
        _with_interval(out, "wrong_share", [e["mentioning"] - e["right"] for e in each], counts, setup.draws)
        _with_interval(out, "phrase_diversity", [e["phrase_distinct"] for e in each], [e["phrase_uses"] for e in each],
                       setup.draws)
        out["_relation"] = rel
    return out


def ranking(setup: EvalSetup, scores) -> dict:
    """LiveBot's R@1/5/10, MR and MRR (one rank per test frame: its best-ranked ground truth), with intervals."""
    ranks, k = [], 0
    for c in setup.cands:
        n = len(c["candidates"])
        ranks.append(metrics.frame_rank(list(scores[k:k + n]), c["truth"]))
        k += n
    have = [r is not None for r in ranks]
    ranks = [r or 1 for r in ranks]               # frames without ground truth count nowhere (den 0)
    out: dict = {}
    for name, per in metrics.ranking_per_frame(ranks).items():
        _with_interval(out, name, [v * h for v, h in zip(per, have)], [float(h) for h in have], setup.draws)
    return out


def score_loaded(setup: EvalSetup, name: str, model, g, path: str = "", strategy: str = "", log=print,
                 rank: bool = True):
    """The row of a loaded comment model (g: its generate settings) and its comments per test frame.
    rank=False: no ranking columns (a row that generates differently from a model already ranked, with
    the same scorer, would repeat its ranking)."""
    t0 = time.time()
    strat = strategy or g.strategy
    per_frame = model.comments(setup.images, setup.num_per_frame, jax.random.PRNGKey(setup.seed), strategy=strat,
                               temperature=g.temperature, top_k=g.top_k, beam_size=g.beam_size)
    row = {"model": name, "workdir": path, "strategy": strat, **text_metrics(setup, per_frame)}
    if rank:
        scores = model.log_prob(setup.cand_images, setup.cand_texts, jax.random.PRNGKey(setup.seed + 1))
        ranked = ranking(setup, scores)
        row["_frames"].update(ranked.pop("_frames"))
        row.update(ranked)
    log(f"  {DISPLAY.get(name, name)} ({path or 'control'}, {strat}): " + " ".join(
        f"{c} {reports.fmt(row.get(c))}" for c in COLUMNS if c in row) + f"  [{time.time() - t0:.0f}s]")
    return row, per_frame


def control_rows(setup: EvalSetup, loaded: dict, strategy: str = "", log=print):
    """The control rows: when E-GA selects among more draws, E-GA with one noise draw per comment and
    each baseline given the same budget (n x candidates draws, n kept by its own likelihood with E-GA's
    overlap penalty: comment_model.LikelihoodSelected); and the frame-blind character n-gram LM
    (Kneser-Ney; fitted on the train comments, its order chosen on the validation comments; it samples
    its comments and ranks by its likelihood). loaded: {name: (model, config, workdir)} of the models
    evaluated. (rows, comments)."""
    rows, generated = [], {}
    max_len = next(iter(loaded.values()))[0].max_len    # the comment length the models decode to
    if "ega" in loaded and loaded["ega"][0].candidates > 1:
        model, cfg, ega_path = loaded["ega"]
        variants = [("ega_one_draw", dataclasses.replace(model, candidates=1, overlap_penalty=0.0), cfg, ega_path)]
        for n in zoo.BASELINES:
            if n in loaded:
                base = loaded[n][0]
                if hasattr(base, "score_samples"):       # a Monte Carlo likelihood: fewer draws to pick by
                    base = dataclasses.replace(base, score_samples=min(base.score_samples, SELECT_SAMPLES))
                variants.append((f"{n}_selected", LikelihoodSelected(base, model.candidates, model.overlap_penalty),
                                 loaded[n][1], loaded[n][2]))
        for name, m, c, path in variants:
            # Same scorer as the model's own row: its ranking is that row's.
            row, generated[name] = score_loaded(setup, name, m, c.generate, path, strategy, log, rank=False)
            if name != "ega_one_draw":
                row["strategy"] += f", {model.candidates} draws per comment"
            rows.append(row)
    from ega_jax import ngram      # here: evaluate's own import list stays what every model needs
    from ega_jax.data.vocab import load_vocab
    valid = records.read_split(setup.data_dir, records.eval_split(setup.data_dir, log))
    lm, orders = ngram.FrameBlindLM.fit(setup.train_comments, [c for r in valid for c in r["comments"]],
                                        load_vocab(setup.data_dir), max_len, seed=setup.seed)
    log("  n-gram LM: validation NLL/token by order " + ", ".join(f"{k}: {v:.3f}" for k, v in orders.items())
        + f"; order {lm.lm.order}")
    g = types.SimpleNamespace(strategy="sample", temperature=1.0, top_k=0, beam_size=1)
    row, generated["ngram_lm"] = score_loaded(setup, "ngram_lm", lm, g, "", "sample", log)
    row["strategy"] = f"sample (order {lm.lm.order})"
    rows.append(row)
    return rows, generated


def paired_differences(setup: EvalSetup, rows: list[dict], reference: str = "ega") -> list[dict]:
    """For every metric, the reference row minus each other row, with the paired bootstrap interval over
    the same resampled test frames (metrics.paired_ratio_difference). "holds" says whether the interval
    excludes 0, and which way."""
    ref = next((r for r in rows if r["model"] == reference), None)
    if ref is None:
        return []
    out = []
    for row in rows:
        if row is ref:
            continue
        for c in COLUMNS:
            if c not in ref.get("_frames", {}) or c not in row.get("_frames", {}):
                continue
            d, lo, hi = metrics.paired_ratio_difference(*ref["_frames"][c], *row["_frames"][c], setup.draws)
            sign = "higher" if lo > 0 else "lower" if hi < 0 else ""
            better = "" if not sign or c not in HIGHER_IS_BETTER | LOWER_IS_BETTER else \
                "better" if (sign == "higher") == (c in HIGHER_IS_BETTER) else "worse"
            out.append({"reference": reference, "model": row["model"], "metric": c, "difference": d, "lo": lo,
                        "hi": hi, "holds": (f"{DISPLAY.get(reference)} {sign}" + (f" ({better})" if better else ""))
                        if sign else "no difference (the interval holds 0)"})
    return out


def write_reports(setup: EvalSetup, rows: list[dict], generated: dict, out_dir: str, cases: int = 4) -> list[str]:
    """table1.md/csv, confusion.md, samples.jsonl (+ frames/) and case_study.png; returns table1.md's lines."""
    os.makedirs(out_dir, exist_ok=True)
    frame_files = reports.save_frames(setup.test, out_dir)
    columns = [c for c in COLUMNS if any(c in r for r in rows)]
    lex = setup.lexicons
    caption = (f"{len(setup.test)} test key frames ({setup.split_note}), {setup.num_per_frame} comments per frame per model, seed "
               f"{setup.seed}; BLEU-4 against {setup.num_refs} random human comments of the frame; ranking of "
               f"{len(setup.cands[0]['candidates']) if setup.cands else 0} candidates per frame "
               f"in LiveBot's recipe (≤5 ground truth; negatives: 20 popular, 20 most similar to the frame's "
               f"context, i.e. ≤5 comments of the adjacent seconds of its video, then random; none a "
               f"near-duplicate of a ground truth), one rank per frame (its best ground truth); a row that only "
               f"selects differently from a model's draws (one draw, selected by its likelihood) has that model's "
               f"ranking (the same scorer) and shows none"
               + (f"; relation: share of the scene-naming comments whose only named scene is the true one "
                  f"(chance {1 / len(lex):.3f}; – when nothing is named), naming: share of all comments that name a "
                  f"scene, right_share / wrong_share: comments naming only the true scene / any other, over all "
                  f"comments; phrase_diversity: distinct lexicon phrases per phrase use within a frame" if lex else "")
               + f". [lo, hi]: 95% bootstrap interval over the {len(setup.test)} test frames ({BOOTSTRAP} resamples, "
               "the same for every model); Human Recall: Wilson interval over labels.")
    md = reports.write_table1(out_dir, setup.data_dir, caption, rows, columns, DISPLAY)
    if lex:
        reports.write_confusion(os.path.join(out_dir, "confusion.md"), rows, sorted(lex), DISPLAY)
    reports.write_samples_jsonl(os.path.join(out_dir, "samples.jsonl"), setup.test, frame_files,
                                {**generated, "human": setup.held_out})
    # Fig. 4: key frames of different scenes (the first few test frames otherwise).
    picked, seen = [], set()
    for i, r in enumerate(setup.test):
        if r["scene"] not in seen or not lex:
            picked.append(i)
            seen.add(r["scene"])
        if len(picked) == cases:
            break
    reports.case_study_png(os.path.join(out_dir, "case_study.png"), [setup.test[i] for i in picked],
                           {**{k: [v[i] for i in picked] for k, v in generated.items()},
                            "human": [setup.held_out[i] for i in picked]}, DISPLAY)
    return md


def seed_dirs(workdir: str) -> list[tuple[int, str]]:
    """(training seed, directory) of W/seed<k>/ subdirectories that hold trained models: configs/table1.py
    trains every model once per seed there."""
    out = []
    for d in sorted(os.listdir(workdir)):
        m = re.fullmatch(r"seed(\d+)", d)
        path = os.path.join(workdir, d)
        if m and os.path.isdir(path) and discover(path):
            out.append((int(m.group(1)), path))
    return sorted(out)


def pool_seeds(per_seed: dict[int, list[dict]], draws: np.ndarray, seed: int = 0, reference: str = "ega"):
    """Table 1 over training seeds. Each cell: the mean over seeds of the metric, with a 95 % bootstrap
    interval over test frames AND seeds (each resample draws the frames, the same for every model, and
    the seeds with replacement). Paired differences: the reference minus each other row per seed on the
    same resampled frames, averaged over the resampled seeds; a difference "holds" only when its paired
    interval excludes 0 in every seed (and pooled). Returns (pooled rows, per-seed rows, paired rows)."""
    with warnings.catch_warnings():      # a metric that is n/a in every seed (nothing named) stays nan, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        return _pool_seeds(per_seed, draws, seed, reference)


def _pool_seeds(per_seed, draws, seed, reference):
    seeds = sorted(per_seed)
    rng = np.random.default_rng(seed)
    seed_draws = rng.integers(len(seeds), size=(len(draws), len(seeds)))
    names = [r["model"] for r in per_seed[seeds[0]]]
    by = {s: {r["model"]: r for r in per_seed[s]} for s in seeds}
    boots: dict = {}

    def boot(s, name, c):
        """The metric of (seed, model) on every resample of the frames, computed once."""
        if (s, name, c) not in boots:
            boots[s, name, c] = metrics.bootstrap_ratios(*by[s][name]["_frames"][c], draws)
        return boots[s, name, c]

    def over_seeds(per_seed_boot):
        """(S, B) -> (B,): each resample's mean over its resampled seeds."""
        return np.nanmean(per_seed_boot[seed_draws.T, np.arange(len(draws))], axis=0)

    pooled, flat, paired = [], [], []
    for name in names:
        row = {"model": name}
        for c in COLUMNS:
            if not all(c in by[s].get(name, {}).get("_frames", {}) for s in seeds):
                continue
            values = np.array([by[s][name][c] for s in seeds], float)
            row[c] = float(np.nanmean(values)) if not np.isnan(values).all() else float("nan")
            row[c + "_lo"], row[c + "_hi"] = metrics.percentile_interval(
                over_seeds(np.stack([boot(s, name, c) for s in seeds])))
            for k, s in enumerate(seeds):
                row[f"{c}@seed{s}"] = float(values[k])
        pooled.append(row)
        for s in seeds:
            if name in by[s]:
                flat.append({"seed": s, "model": name, **{k: v for k, v in by[s][name].items()
                                                          if k in COLUMNS or k.endswith(("_lo", "_hi"))}})
    if not all(reference in by[s] for s in seeds):
        return pooled, flat, paired
    for name in names:
        if name == reference:
            continue
        for c in COLUMNS:
            if not all(c in by[s].get(name, {}).get("_frames", {}) and c in by[s][reference]["_frames"] for s in seeds):
                continue
            # Per seed: the paired difference and its interval (metrics.paired_ratio_difference, from the
            # resamples already computed); pooled: averaged over the resampled seeds.
            diffs = np.stack([boot(s, reference, c) - boot(s, name, c) for s in seeds])
            each = [(by[s][reference][c] - by[s][name][c], *metrics.percentile_interval(diffs[k]))
                    for k, s in enumerate(seeds)]
            lo, hi = metrics.percentile_interval(over_seeds(diffs))
            d = float(np.nanmean([e[0] for e in each]))
            up, down = sum(e[1] > 0 for e in each), sum(e[2] < 0 for e in each)
            if up == len(seeds) and lo > 0:
                holds = "higher in every seed"
            elif down == len(seeds) and hi < 0:
                holds = "lower in every seed"
            elif lo > 0 or hi < 0:
                holds = f"pooled {'higher' if lo > 0 else 'lower'}, but not in every seed ({max(up, down)} of {len(seeds)})"
            else:
                holds = "no difference (the interval holds 0)"
            if holds.endswith("every seed") and c in HIGHER_IS_BETTER | LOWER_IS_BETTER:
                holds += " (better)" if holds.startswith("higher") == (c in HIGHER_IS_BETTER) else " (worse)"
            paired.append({"reference": reference, "model": name, "metric": c, "difference": d, "lo": lo, "hi": hi,
                           "holds": f"{DISPLAY.get(reference)} {holds}" if "no difference" not in holds else holds,
                           "per_seed": "; ".join(f"seed {s}: {e[0]:+.4f} [{e[1]:+.4f}, {e[2]:+.4f}]"
                                                 for s, e in zip(seeds, each))})
    return pooled, flat, paired


def fingerprint(found: list[tuple[str, str]], settings: dict) -> dict:
    """What an evaluation's rows depend on: its settings, the metric code, and every model's config and
    checkpoint files (path, size, mtime)."""
    here = os.path.dirname(os.path.abspath(__file__))
    code = hashlib.sha256(b"".join(open(os.path.join(here, f), "rb").read()
                                   for f in ("evaluate.py", "metrics.py", "comment_model.py", "ngram.py"))).hexdigest()
    models = []
    for name, path in found:
        files = []
        for root, _, names in os.walk(path):
            rel = os.path.relpath(root, path)
            if rel == "." or "checkpoints" in rel.split(os.sep):
                for f in sorted(names):
                    if rel != "." or f == runs.CONFIG:
                        st = os.stat(os.path.join(root, f))
                        files.append((os.path.join(rel, f), st.st_size, int(st.st_mtime)))
        models.append((name, os.path.abspath(path), sorted(files)))
    return {**settings, "code": code, "models": models}


def eval_settings(num_per_frame: int, seed: int, strategy: str, num_refs: int, controls: bool) -> dict:
    """The settings an evaluation's rows depend on (part of its fingerprint)."""
    return dict(num_per_frame=num_per_frame, seed=seed, strategy=strategy, num_refs=num_refs, controls=controls)


def _cached_rows(path: str, out: str, key: dict):
    """A seed's rows as its last evaluation saved them (ROWS), if it ran with the same fingerprint."""
    cache = os.path.join(path, out, ROWS)
    if not os.path.exists(cache):
        return None
    with open(cache, "rb") as f:
        saved = pickle.load(f)
    return saved["rows"] if saved["fingerprint"] == key else None


def evaluate_seeds(workdir: str, found_seeds: list[tuple[int, str]], num_per_frame: int, seed: int, strategy: str,
                   num_refs: int, cases: int, out: str, controls: bool, log=print) -> list[dict]:
    """configs/table1.py with several training seeds: each W/seed<k> evaluated as usual (its own
    W/seed<k>/evaluation/), then pooled into W/evaluation/ (pool_seeds): table1.md / .csv (the mean
    over seeds, intervals over frames and seeds), table1_seeds.csv (every seed's values) and paired.md /
    .csv; the first seed's samples.jsonl and frames are copied there for the labelling app. A seed
    already evaluated with the same settings and checkpoints (its W/seed<k>/evaluation/rows.pkl) is read
    back, so seeds can be evaluated in parallel processes (evaluate --workdir=W/seed<k>) and pooled after."""
    per_seed = {}
    settings = eval_settings(num_per_frame, seed, strategy, num_refs, controls)
    for s, path in found_seeds:
        log(f"=== training seed {s}: {path}")
        per_seed[s] = _cached_rows(path, out, fingerprint(discover(path), settings))
        if per_seed[s] is not None:
            log(f"  read back {os.path.join(path, out, ROWS)}: evaluated with the same settings and checkpoints")
            continue
        per_seed[s] = evaluate(path, num_per_frame, seed, strategy, num_refs, cases, out, controls, log)
    frames = len(next(iter(per_seed[found_seeds[0][0]][0]["_frames"].values()))[0])
    draws = metrics.bootstrap_resamples(frames, BOOTSTRAP, seed)
    pooled, flat, paired = pool_seeds(per_seed, draws, seed)
    add_human_recall(workdir, pooled)
    out_dir = os.path.join(workdir, out)
    if jax.process_index() > 0:
        return pooled
    first = os.path.join(found_seeds[0][1], out)
    os.makedirs(out_dir, exist_ok=True)
    shutil.copy(os.path.join(first, "samples.jsonl"), os.path.join(out_dir, "samples.jsonl"))
    shutil.copytree(os.path.join(first, "frames"), os.path.join(out_dir, "frames"), dirs_exist_ok=True)
    seeds = [s for s, _ in found_seeds]
    columns = [c for c in COLUMNS if any(c in r for r in pooled)]
    caption = (f"{frames} test key frames, every model trained once per training seed ({', '.join(map(str, seeds))}); "
               f"each cell the mean over seeds [95% bootstrap interval over test frames and seeds, {BOOTSTRAP} "
               f"resamples]; every seed's table: W/seed<k>/{out}/table1.md, their values: table1_seeds.csv. "
               "Metrics as in each seed's table.")
    md = reports.write_table1(out_dir, workdir, caption, pooled, columns, DISPLAY)
    reports.write_csv(os.path.join(out_dir, "table1_seeds.csv"), flat,
                      ["seed", "model"] + [f"{c}{x}" for c in columns for x in ("", "_lo", "_hi")])
    log("\n".join(md[2:-2]))
    if paired:
        lines = reports.write_paired(out_dir, paired, DISPLAY, frames, BOOTSTRAP, seeds=seeds)
        log("\n".join(lines[2:]))
    log(f"wrote {out_dir}/table1.md, table1.csv, table1_seeds.csv" + (", paired.md, paired.csv" if paired else ""))
    return pooled


def evaluate(workdir: str, num_per_frame: int = 10, seed: int = 0, strategy: str = "", num_refs: int = 3,
             cases: int = 4, out: str = "evaluation", controls: bool = True, log=print) -> list[dict]:
    if not os.path.isdir(workdir):
        raise runs.RunError(f"no workdir {workdir}")
    found = discover(workdir)
    if not found and seed_dirs(workdir):
        return evaluate_seeds(workdir, seed_dirs(workdir), num_per_frame, seed, strategy, num_refs, cases, out,
                              controls, log)
    if not found:
        raise runs.RunError(f"no trained model in {workdir} or its subdirectories (a model workdir has a "
                            f"config.json with stage {', '.join(e.stage for e in zoo.MODELS.values())})")
    setup = prepare(found, num_per_frame, seed, num_refs, log)
    log(f"evaluate: {len(found)} model(s) on {len(setup.test)} test key frames of {setup.data_dir} "
        f"({setup.split_note}), {num_per_frame} comments per frame, seed {seed}")
    rows, generated, loaded = [], {}, {}
    for name, path in found:
        loaded[name] = (*zoo.load(path), path)          # (model, config, workdir), loaded once
        row, generated[name] = score_loaded(setup, name, loaded[name][0], loaded[name][1].generate, path,
                                            strategy, log)
        rows.append(row)
    if controls:
        more, more_generated = control_rows(setup, loaded, strategy, log)
        rows += more
        generated.update(more_generated)
    rows.append({"model": "human", **text_metrics(setup, setup.held_out)})
    add_human_recall(workdir, rows)
    out_dir = os.path.join(workdir, out)
    if jax.process_index() > 0:          # a multi-host job: process 0 writes the reports
        return rows
    md = write_reports(setup, rows, generated, out_dir, cases)
    key = fingerprint(found, eval_settings(num_per_frame, seed, strategy, num_refs, controls))
    with open(os.path.join(out_dir, ROWS), "wb") as f:        # what pooling over seeds reads back
        pickle.dump({"fingerprint": key, "rows": rows}, f)
    log("\n".join(md[2:-2]))
    paired = paired_differences(setup, rows)
    if paired:
        lines = reports.write_paired(out_dir, paired, DISPLAY, len(setup.test), BOOTSTRAP)
        log("\n".join(lines[2:]))
    log(f"wrote {out_dir}/table1.md, table1.csv, case_study.png, samples.jsonl"
        + (", confusion.md" if setup.lexicons else "") + (", paired.md, paired.csv" if paired else ""))
    return rows


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    if not f["verbosity"].present:
        # Orbax logs every checkpoint read at INFO; the table is what this command is for.
        from absl import logging
        logging.set_verbosity(logging.WARNING)
    try:
        evaluate(f.workdir, f.num_per_frame, f.seed, f.strategy, f.num_refs, out=f.out, controls=f.controls)
    except (runs.RunError, runs.ConfigError) as e:
        print(f"error: {e}")
        return 1
    return 0


if __name__ == "__main__":
    # Defined here, not at import: ega_jax.jobs.table1 imports this module and main has its own --workdir.
    flags.DEFINE_string("workdir", None, "A model's workdir, or a directory of model workdirs.")
    flags.DEFINE_integer("num_per_frame", 10, "Comments generated per test key frame by every model.")
    flags.DEFINE_integer("seed", 0, "Seed of generation, references and ranking candidates.")
    flags.DEFINE_string("strategy", "", "Decoding strategy for every model (greedy, sample, topk, beam); "
                        "empty: each model's config.generate.strategy.")
    flags.DEFINE_integer("num_refs", 3, "Human references per frame for BLEU-4 (3 in the paper).")
    flags.DEFINE_string("out", "evaluation", "Output subdirectory of the workdir.")
    flags.DEFINE_bool("controls", True, "Add the control rows: E-GA with one noise draw per comment (no critic "
                      "selection), each baseline with E-GA's selection budget (picking by its own likelihood) "
                      "and the frame-blind character n-gram LM; with E-GA's paired differences.")
    flags.mark_flags_as_required(["workdir"])
    app.run(main)
