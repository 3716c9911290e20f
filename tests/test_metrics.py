"""Table 1 metrics on hand-computed cases (ega_jax/metrics.py)."""

import math

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
    # negatives score 3 and 1; both ground truths beat them
    assert metrics.frame_ranks([5, 3, 4, 1], [True, False, True, False]) == [1, 1]
    assert metrics.frame_ranks([2, 5, 2, 1], [True, False, False, False]) == [3]   # a tie counts against
    m = metrics.ranking_metrics([1, 2, 6, 11])
    assert m == pytest.approx({"R@1": 0.25, "R@5": 0.5, "R@10": 0.75, "MR": 5.0,
                               "MRR": (1 + 1 / 2 + 1 / 6 + 1 / 11) / 4})
    assert math.isnan(metrics.ranking_metrics([])["MRR"])


def _world():
    frames = [["下雪了", "好冷啊", "雪好大", "冬天来了", "下雪了"], ["海边真美", "想去海边", "浪好大"]]
    pool = (["233"] * 9 + ["哈哈哈"] * 7 + ["前方高能"] * 5 + ["下雪好美啊"] * 1 + ["下雪了吗"] * 1 +
            [f"随机{i}" for i in range(200)] + ["海边的浪"] + ["浪好大"])    # 浪好大 is frame 1's own
    return frames, pool


def test_candidates_follow_the_livebot_recipe():
    frames, pool = _world()
    cands = metrics.build_candidates(frames, pool, seed=0, total=40, n_truth=3, n_plausible=5, n_popular=3)
    for own, c in zip(frames, cands):
        cs, kinds = c["candidates"], c["kinds"]
        assert len(cs) == 40 and len(set(cs)) == 40                        # no repeats
        truth = [x for x, t in zip(cs, c["truth"]) if t]
        assert len(truth) == 3 and set(truth) <= set(own)
        assert not set(x for x, t in zip(cs, c["truth"]) if not t) & set(own)  # a negative is never its own
        plausible = [x for x, k in zip(cs, kinds) if k == "plausible"]
        # Plausible: at most 5, and each shares a character with the ground truth.
        assert 1 <= len(plausible) <= 5 and all(set(x) & set("".join(truth)) for x in plausible)
        popular = [x for x in ["233", "哈哈哈", "前方高能", "下雪好美啊"] if x not in plausible][:3]
        assert [x for x, k in zip(cs, kinds) if k == "popular"] == popular
        assert kinds == ["truth"] * 3 + ["plausible"] * len(plausible) + ["popular"] * 3 + ["random"] * (
            34 - len(plausible))
    # Snow comments are the most similar negatives of the snow frame, the sea one of the sea frame.
    plaus0 = [x for x, k in zip(cands[0]["candidates"], cands[0]["kinds"]) if k == "plausible"]
    assert {"下雪好美啊", "下雪了吗"} <= set(plaus0)
    plaus1 = [x for x, k in zip(cands[1]["candidates"], cands[1]["kinds"]) if k == "plausible"]
    assert "海边的浪" in plaus1
    # Deterministic for a seed; the random part changes with it.
    again = metrics.build_candidates(frames, pool, seed=0, total=40, n_truth=3, n_plausible=5, n_popular=3)
    assert again == cands
    other = metrics.build_candidates(frames, pool, seed=1, total=40, n_truth=3, n_plausible=5, n_popular=3)
    assert other != cands


def test_candidates_with_a_small_pool_and_few_comments():
    cands = metrics.build_candidates([["只有一条"], []], ["a", "b", "只有一条"], total=100)
    assert cands[0]["candidates"][0] == "只有一条" and cands[0]["truth"] == [True, False, False]
    assert sorted(cands[0]["candidates"][1:]) == ["a", "b"]
    assert not any(cands[1]["truth"]) and sorted(cands[1]["candidates"]) == ["a", "b", "只有一条"]
