"""Table 1 metrics on hand-computed cases (ega_jax/metrics.py)."""

import math

import numpy as np
import pytest

from ega_jax import metrics


def test_ngrams_are_a_set_over_the_orders():
    assert metrics.ngrams("abc", (1, 2)) == {"a", "b", "c", "ab", "bc"}
    assert metrics.ngrams("aaa", (1, 2)) == {"a", "aa"}
    assert metrics.ngrams("", (1, 2, 3, 4)) == set()
    assert metrics.ngrams("ab", (3,)) == set()


def test_fluency_weights_known_ngrams_by_length():
    vocab = {"a", "b", "ab"}
    # T_s = {a, b, c, d, ab, bc, cd}: lengths 4*1 + 3*2 = 10; known a + b + ab = 4.
    assert metrics.fluency_of("abcd", vocab, (1, 2)) == pytest.approx(0.4)
    assert metrics.fluency_of("ab", vocab, (1, 2)) == 1.0
    assert metrics.fluency_of("", vocab, (1, 2)) == 0.0                       # empty generation
    assert metrics.fluency(["abcd", "ab", ""], vocab, (1, 2)) == pytest.approx((0.4 + 1 + 0) / 3)
    # A duplicate counts as often as it was generated.
    assert metrics.fluency(["ab", "ab", "xy"], vocab, (1, 2)) == pytest.approx(2 / 3)
    assert metrics.fluency([], vocab) == 0.0
    train = metrics.train_ngrams(["下雪了", "好冷"], (1, 2))
    assert train == {"下", "雪", "了", "下雪", "雪了", "好", "冷", "好冷"}
    # 下雪 known, 雪好 not: (1 + 1 + 1 + 2) / (3 + 4)
    assert metrics.fluency_of("下雪好", train, (1, 2)) == pytest.approx(5 / 7)


def test_diversity_is_one_minus_mean_pairwise_dice():
    o = (1, 2)
    assert metrics.diversity_of(["ab", "ab"], o) == 0.0                       # duplicates
    assert metrics.diversity_of(["ab", "cd"], o) == 1.0
    # {a,b,c,ab,bc} vs {a,b,d,ab,bd}: 2*3/10 = 0.6
    assert metrics.diversity_of(["abc", "abd"], o) == pytest.approx(0.4)
    # pairs (0,1) = 1, (0,2) = 0, (1,2) = 0
    assert metrics.diversity_of(["ab", "ab", "cd"], o) == pytest.approx(2 / 3)
    assert metrics.diversity_of(["", ""], o) == 0.0                           # two empty comments are identical
    assert metrics.diversity_of(["", "ab"], o) == 1.0
    assert math.isnan(metrics.diversity_of(["ab"], o))
    # Mean over frames; frames with fewer than two comments do not count.
    assert metrics.diversity([["ab", "ab"], ["ab", "cd"], ["x"]], o) == pytest.approx(0.5)


def test_char_bleu4_by_hand():
    # 1- to 4-gram precisions 4/5, 3/4, 2/3, 1/2; same length, so no brevity penalty.
    assert metrics.char_bleu4(["ABCDE"], [["ABCDF"]]) == pytest.approx((0.8 * 0.75 * 2 / 3 * 0.5) ** 0.25)
    # No 4-gram match: exp smoothing counts it 1/2 of 1/2 -> (4/5 * 2/4 * 1/3 * 1/4)^(1/4)
    assert metrics.char_bleu4(["ABCXD"], [["ABCDE"]]) == pytest.approx((0.8 * 0.5 / 3 * 0.25) ** 0.25)
    # Several references: counts are clipped by the best reference per n-gram.
    assert metrics.char_bleu4(["ABCDE"], [["ABCDF", "XBCDE"]]) == pytest.approx(1.0)
    # Brevity penalty exp(1 - 4/3); effective order: a 3-character comment is scored on orders 1-3.
    assert metrics.char_bleu4(["哈哈哈"], [["哈哈哈哈"]]) == pytest.approx(math.exp(1 - 4 / 3))
    # Spaces are not characters of a comment.
    assert metrics.char_bleu4(["你好 世界"], [["你好世界"]]) == pytest.approx(1.0)
    assert metrics.char_bleu4([""], [["ABC"]]) == 0.0
    # Duplicates are averaged like any other comment.
    assert metrics.char_bleu4(["ABCDE", "ABCDE", ""], [["ABCDF"]] * 3) == pytest.approx(
        2 * (0.8 * 0.75 * 2 / 3 * 0.5) ** 0.25 / 3)
    with pytest.raises(ValueError):
        metrics.char_bleu4(["a"], [])


def test_ranks_and_ranking_metrics():
    # One rank per frame: its best ground truth (4) against the negatives (3 and 1).
    assert metrics.frame_rank([5, 3, 4, 1], [True, False, True, False]) == 1
    assert metrics.frame_rank([2, 5, 2, 1], [True, False, False, False]) == 3      # a tie counts against
    assert metrics.frame_rank([1, 2], [False, False]) is None
    nan = float("nan")
    assert metrics.frame_rank([nan, 1, 2], [True, False, False]) == 3              # NaN ranks last, never first
    assert metrics.frame_rank([1, nan, 0], [True, False, False]) == 1
    m = metrics.ranking_metrics([1, 2, 6, 11])
    assert m == pytest.approx({"R@1": 0.25, "R@5": 0.5, "R@10": 0.75, "MR": 5.0,
                               "MRR": (1 + 1 / 2 + 1 / 6 + 1 / 11) / 4})
    assert math.isnan(metrics.ranking_metrics([])["MRR"])


def _world():
    frames = [["下雪了", "好冷啊", "雪好大", "冬天来了", "下雪了"], ["海边真美", "想去海边", "浪好大"]]
    # The context of a frame: the comments around its moment, not its own.
    contexts = [["下雪啦", "好大的雪"], ["海浪声", "海边"]]
    pool = (["233"] * 9 + ["哈哈哈"] * 7 + ["前方高能"] * 5 + ["下雪好美啊"] * 1 + ["下雪啦啦"] * 1 +
            [f"随机{i}" for i in range(200)] + ["海边的浪"] + ["浪好大"] + ["哇下雪了!"] + ["雪好大啊"])
    return frames, contexts, pool


def test_candidates_follow_the_livebot_recipe():
    frames, contexts, pool = _world()
    cands = metrics.build_candidates(frames, contexts, pool, seed=0, total=40, n_truth=3, n_plausible=5, n_popular=3)
    for own, c in zip(frames, cands):
        cs, kinds = c["candidates"], c["kinds"]
        assert len(cs) == 40 and len(set(cs)) == 40                        # no repeats
        truth = [x for x, t in zip(cs, c["truth"]) if t]
        assert len(truth) == 3 and set(truth) <= set(own)
        negatives = [x for x, t in zip(cs, c["truth"]) if not t]
        # A negative is never the frame's own comment nor a near-duplicate of a ground truth.
        assert not set(negatives) & set(own)
        assert not any(metrics.near_duplicate(x, t) for x in negatives for t in truth)
        popular = [x for x in ["233", "哈哈哈", "前方高能"]]
        assert [x for x, k in zip(cs, kinds) if k == "popular"] == popular
        n_plaus = sum(k == "plausible" for k in kinds)
        # LiveBot's order: ground truth, popular, plausible, random.
        assert kinds == ["truth"] * 3 + ["popular"] * 3 + ["plausible"] * n_plaus + ["random"] * (34 - n_plaus)
    truth0 = [x for x, t in zip(cands[0]["candidates"], cands[0]["truth"]) if t]
    for dup, of in (("哇下雪了!", "下雪了"), ("雪好大啊", "雪好大")):
        assert (dup in cands[0]["candidates"]) == (of not in truth0)
    assert "浪好大" not in cands[1]["candidates"][3:]
    # Plausible negatives follow the context, not the ground truth: swap the contexts and they swap.
    plaus = lambda cc, f: [x for x, k in zip(cc[f]["candidates"], cc[f]["kinds"]) if k == "plausible"]
    assert {"下雪好美啊", "下雪啦啦"} <= set(plaus(cands, 0)) and "海边的浪" in plaus(cands, 1)
    swapped = metrics.build_candidates(frames, contexts[::-1], pool, seed=0, total=40, n_truth=3, n_plausible=5,
                                       n_popular=3)
    assert "海边的浪" in plaus(swapped, 0) and "下雪好美啊" in plaus(swapped, 1)
    # Deterministic for a seed; the random part changes with it.
    again = metrics.build_candidates(frames, contexts, pool, seed=0, total=40, n_truth=3, n_plausible=5, n_popular=3)
    assert again == cands
    other = metrics.build_candidates(frames, contexts, pool, seed=1, total=40, n_truth=3, n_plausible=5, n_popular=3)
    assert other != cands


def test_the_context_is_livebots_adjacent_seconds():
    by_second = {9: ["a9"], 10: ["own"], 11: ["b11", "c11"], 12: ["d12"], 8: ["e8", "f8"], 13: ["g13"], 20: ["far"]}
    # -1, +1, -2, +2, ... at most 5; the moment's own second is not its context.
    assert metrics.livebot_context(10, by_second) == ["a9", "b11", "c11", "e8", "f8"]
    assert metrics.livebot_context(10, by_second, limit=10) == ["a9", "b11", "c11", "e8", "f8", "d12", "g13"]
    assert metrics.livebot_context(30, by_second) == []
    from ega_jax import evaluate
    recs = [{"video_id": "v", "keyframe_second": 4, "comments": ["x", "y"], "comment_seconds": [4.2, 5.5]},
            {"video_id": "v", "keyframe_second": 7, "comments": ["z", "w"], "comment_seconds": [6.9, 5.1]},
            {"video_id": "u", "keyframe_second": 4, "comments": ["other video"], "comment_seconds": [5.0]}]
    # Whichever key frame owns them, in the order sent: second 5 holds w (5.1) then y (5.5).
    assert evaluate.ranking_contexts(recs[:1], recs) == [["w", "y", "z"]]


def test_candidates_with_a_small_pool_and_few_comments():
    cands = metrics.build_candidates([["只有一条"], []], [[], []], ["a", "b", "只有一条"], total=100)
    assert cands[0]["candidates"][0] == "只有一条" and cands[0]["truth"] == [True, False, False]
    assert sorted(cands[0]["candidates"][1:]) == ["a", "b"]
    assert not any(cands[1]["truth"]) and sorted(cands[1]["candidates"]) == ["a", "b", "只有一条"]


def test_near_duplicates():
    assert metrics.near_duplicate("小心别烧着了", "哇小心别烧着了!")
    assert metrics.near_duplicate("哈哈哈哈哈哈", "哈哈哈")                      # runs are cut to two
    assert metrics.near_duplicate("ＡＢＣ ｄｅｆ", "abcdef")                     # NFKC, case, spaces
    assert not metrics.near_duplicate("好冷啊", "下雪了")
    assert not metrics.near_duplicate("雪", "下雪了好冷啊")                       # too short to cover it


def _scores_rank(cands, scorer, rng):
    return [metrics.frame_rank([scorer(c, k, t, rng) for c, k, t in zip(cc["candidates"], cc["kinds"], cc["truth"])],
                               cc["truth"]) for cc in cands]


def test_an_oracle_scorer_ranks_first_and_a_random_one_at_chance():
    rng = np.random.default_rng(0)
    pool = [f"评论{i}" for i in range(400)]
    frames = [[f"帧{f}的第{k}条" for k in range(8)] for f in range(600)]
    cands = metrics.build_candidates(frames, [[] for _ in frames], pool, seed=0)
    assert all(len(c["candidates"]) == 100 and sum(c["truth"]) == 5 for c in cands)
    oracle = _scores_rank(cands, lambda c, k, t, r: float(t), rng)
    assert metrics.ranking_metrics(oracle)["R@1"] == 1.0 and metrics.ranking_metrics(oracle)["MRR"] == 1.0
    rand = metrics.ranking_metrics(_scores_rank(cands, lambda c, k, t, r: r.random(), rng))
    # Best of 5 ground truths among 95 negatives: P(rank <= k) = 1 - C(95, k) / C(100, k).
    for k in (1, 5, 10):
        closed = 1 - math.comb(95, k) / math.comb(100, k)
        assert rand[f"R@{k}"] == pytest.approx(closed, abs=3.5 * math.sqrt(closed * (1 - closed) / 600))
    # With one ground truth per frame, R@k = k / 100.
    one = metrics.build_candidates(frames, [[] for _ in frames], pool, seed=0, n_truth=1)
    r1 = metrics.ranking_metrics(_scores_rank(one, lambda c, k, t, r: r.random(), rng))
    for k in (5, 10):
        assert r1[f"R@{k}"] == pytest.approx(k / 100, abs=3.5 * math.sqrt(k / 100 * (1 - k / 100) / 600))


def test_bootstrap_interval_of_a_share_matches_the_normal_approximation():
    rng = np.random.default_rng(1)
    hits = (rng.random(400) < 0.3).astype(float)
    value, lo, hi = metrics.ratio_interval(hits, np.ones(400), metrics.bootstrap_resamples(400, 2000, seed=2))
    half = 1.96 * math.sqrt(value * (1 - value) / 400)
    assert value == hits.mean() and lo < value < hi
    assert lo == pytest.approx(value - half, abs=0.01) and hi == pytest.approx(value + half, abs=0.01)
    # A ratio of sums: frames weigh by their denominators (a mean over comments, not over frames).
    v, _, _ = metrics.ratio_interval([3, 1], [3, 1], metrics.bootstrap_resamples(2, 10))
    assert v == 1.0 and metrics.ratio_interval([1, 0], [1, 3], metrics.bootstrap_resamples(2, 10))[0] == 0.25


def test_paired_difference_matches_a_direct_loop_and_cancels_what_frames_share():
    rng = np.random.default_rng(3)
    n = 300
    ease = rng.random(n)                                   # a frame effect both models share
    den = rng.integers(1, 6, size=n).astype(float)
    a = np.minimum(den, np.round(den * np.clip(ease + 0.05 + 0.1 * rng.standard_normal(n), 0, 1)))
    b = np.minimum(den, np.round(den * np.clip(ease + 0.1 * rng.standard_normal(n), 0, 1)))
    draws = metrics.bootstrap_resamples(n, 500, seed=4)
    d, lo, hi = metrics.paired_ratio_difference(a, den, b, den, draws)
    assert d == pytest.approx(a.sum() / den.sum() - b.sum() / den.sum())
    boot = sorted(a[i].sum() / den[i].sum() - b[i].sum() / den[i].sum() for i in draws)
    assert lo == pytest.approx(np.percentile(boot, 2.5)) and hi == pytest.approx(np.percentile(boot, 97.5))
    # Pairing: the marginal intervals overlap, yet the paired one excludes 0.
    _, alo, ahi = metrics.ratio_interval(a, den, draws)
    _, blo, bhi = metrics.ratio_interval(b, den, draws)
    assert alo < bhi and lo > 0 and (hi - lo) < 0.7 * (ahi - alo)
    # A model against itself: exactly 0, and an interval of 0.
    assert metrics.paired_ratio_difference(a, den, a, den, draws) == (0.0, 0.0, 0.0)


def test_a_bootstrap_over_groups_draws_whole_groups_and_sees_what_they_share():
    """group_bootstrap_weights: every resample draws as many groups as there are, with replacement, and an
    item weighs as often as its group was drawn. Where the items of a group share an effect (one video's
    comments), the interval over the groups has the width of the between-group closed form, and the one
    over the items is far too narrow; with one item per group the two agree."""
    groups = np.repeat([f"v{g}" for g in range(20)], 150)
    w = metrics.group_bootstrap_weights(groups, 3000, seed=5)
    assert w.shape == (3000, 3000)
    per_group = w[:, ::150]                                # one item of each group
    assert np.array_equal(np.repeat(per_group, 150, axis=1), w) and (per_group.sum(axis=1) == 20).all()
    assert per_group.mean() == pytest.approx(1.0, abs=0.02) and per_group.var() == pytest.approx(0.95, abs=0.05)
    rng = np.random.default_rng(6)
    effect = np.repeat(rng.normal(0, 0.1, 20), 150)       # what a group's items share
    x = effect + rng.normal(0, 0.05, 3000)
    ones = np.ones(3000)
    by_group = metrics.percentile_interval(metrics.weighted_ratios(x, ones, w))
    by_item = metrics.percentile_interval(metrics.bootstrap_ratios(x, ones, metrics.bootstrap_resamples(3000, 3000, 5)))
    means = x.reshape(20, 150).mean(axis=1)
    half = 1.96 * means.std() / math.sqrt(20)             # the normal interval of a mean of 20 group means
    assert by_group[1] - by_group[0] == pytest.approx(2 * half, rel=0.15)
    assert by_item[1] - by_item[0] < 0.3 * (by_group[1] - by_group[0])
    # one item per group: the item bootstrap, in distribution
    single = metrics.percentile_interval(metrics.weighted_ratios(x[:400], ones[:400], metrics.group_bootstrap_weights(
        np.arange(400), 3000, seed=7)))
    item = metrics.percentile_interval(metrics.bootstrap_ratios(x[:400], ones[:400], metrics.bootstrap_resamples(400, 3000, 7)))
    assert single[1] - single[0] == pytest.approx(item[1] - item[0], rel=0.1)
    # a ratio of sums: items weigh by their denominators, and a resample with no denominator is nan
    assert metrics.weighted_ratios([1, 3], [1, 1], np.array([[2, 0], [0, 0]]))[0] == 1.0
    assert np.isnan(metrics.weighted_ratios([1, 3], [1, 1], np.array([[0, 0]]))[0])


@pytest.fixture(scope="module")
def default_world(tmp_path_factory):
    """The embedded default dataset (configs/default.py's world), built once for this module."""
    from configs import default
    from ega_jax import runs
    config = default.get_config()
    config.data.default_root = str(tmp_path_factory.mktemp("default_world"))
    return runs.resolve_dataset(config, log=lambda *_: None)


def test_on_the_embedded_default_knowing_the_scene_beats_not_knowing_it(default_world):
    """The instrument must see frame relevance: a scorer that knows each test frame's true scene ranks
    its comments clearly above one that only knows which comments name some scene."""
    from ega_jax import evaluate
    from ega_jax.data import records, world_recipes
    test = sorted(records.read_split(default_world, "test"),
                  key=lambda r: (r["video_id"], r["keyframe_second"]))
    train = records.read_split(default_world, "train")
    assert len(test) >= 100                                  # enough frames to separate models
    cands = metrics.build_candidates([r["comments"] for r in test], evaluate.ranking_contexts(test, train + test),
                                     [c for r in train for c in r["comments"]], seed=0)
    lex = world_recipes.LEXICONS
    rng = np.random.default_rng(0)

    def ranks(score):
        return [metrics.frame_rank([score(r, c) + 1e-3 * rng.random() for c in cc["candidates"]], cc["truth"])
                for r, cc in zip(test, cands)]

    knows = ranks(lambda r, c: 1.0 if r["scene"] in metrics.scene_mentions(c, lex) else
                  -1.0 if metrics.scene_mentions(c, lex) else 0.0)
    blind = ranks(lambda r, c: 1.0 if metrics.scene_mentions(c, lex) else 0.0)
    draws = metrics.bootstrap_resamples(len(test), 1000)
    k = metrics.ratio_interval([1 / r for r in knows], np.ones(len(test)), draws)
    b = metrics.ratio_interval([1 / r for r in blind], np.ones(len(test)), draws)
    assert k[1] > b[2], (k, b)                                # the intervals separate
    # Plausible negatives come from the context, which mostly shares the frame's scene: the blind scorer
    # cannot tell them from the ground truth, so it does not reach the top either.
    # (LiveBot's context is the adjacent seconds, mostly the same scene: about 70 % of the plausible
    # negatives name the true scene, so knowing the scene is not enough for the top either.)
    assert metrics.ranking_metrics(knows)["R@1"] > 0.2 > 0.1 > metrics.ranking_metrics(blind)["R@1"]
    plausible = [(r, c) for r, cc in zip(test, cands) for c, k in zip(cc["candidates"], cc["kinds"])
                 if k == "plausible"]
    assert np.mean([r["scene"] in metrics.scene_mentions(c, lex) for r, c in plausible]) > 0.5
