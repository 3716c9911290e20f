import math

import numpy as np
import pytest

from ega_jax.data.vocab import BOS, EOS, PAD, UNK, CharVocab
from ega_jax.ngram import FrameBlindLM, KneserNeyLM, choose_order

V = 8          # specials 0..3, characters 4..7


def _corpus():
    # a b, a b, a c, b  as token ids with <eos>
    return [[4, 5, EOS], [4, 5, EOS], [4, 6, EOS], [5, EOS]]


def test_unigram_is_the_closed_form():
    lm = KneserNeyLM(1, V).fit(_corpus())
    counts = {4: 3, 5: 3, 6: 1, EOS: 4}
    n, types = sum(counts.values()), len(counts)
    d = 1 / (1 + 2 * 0)          # n1 = 1 (token 6), n2 = 0
    assert lm.discount[1] == pytest.approx(d)
    outcomes = V - 2             # every id but <pad> and <bos>
    for w in range(V):
        want = 0.0 if w in (PAD, BOS) else max(counts.get(w, 0) - d, 0) / n + d * types / n / outcomes
        assert lm.prob([], w) == pytest.approx(want)


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_every_context_is_a_distribution_and_prob_agrees_with_it(order):
    rng = np.random.default_rng(0)
    corpus = [list(rng.integers(3, V, size=rng.integers(1, 9))) + [EOS] for _ in range(300)]
    lm = KneserNeyLM(order, V).fit(corpus)
    for ctx in ([], [4], [4, 5], [7, 7, 7, 7], [3, 6, 4]):
        p = lm.distribution(ctx)
        assert p.sum() == pytest.approx(1.0) and p[PAD] == p[BOS] == 0.0 and np.all(p[2:] > 0)
        for w in range(2, V):
            assert lm.prob(ctx, w) == pytest.approx(p[w])
    # log_prob is the chain rule over the comment's tokens, <eos> included
    seq = [4, 6, 5, EOS, PAD, PAD]
    ctx, want = [BOS] * (order - 1), 0.0
    for w in [4, 6, 5, EOS]:
        want += math.log(lm.prob(ctx, w))
        ctx = (ctx + [w])[-(order - 1):] if order > 1 else []
    assert lm.log_prob(seq) == pytest.approx(want)
    assert lm.nll([seq])[1] == 4


def test_higher_orders_model_real_danmaku_better_and_validation_picks_the_order():
    from conftest import shared
    from ega_jax.data import danmaku
    texts = [c.text for c in danmaku.parse_file(str(shared("danmaku", "danmakumarked", "marked",
                                                            "BV1ms411b7Ph(0).csv"))).comments]
    assert len(texts) > 2000
    rng = np.random.default_rng(0)
    rng.shuffle(texts)
    train, valid = texts[: len(texts) * 4 // 5], texts[len(texts) * 4 // 5:]
    vocab = CharVocab.build(train, 2)
    enc = lambda ts: [vocab.encode(t, 32) for t in ts]
    lm, scores = choose_order(enc(train), enc(valid), len(vocab), orders=(1, 2, 3, 4))
    assert scores[1] > scores[2] > min(scores[3], scores[4])
    assert lm.order == min(scores, key=scores.get)
    total, count = lm.nll(enc(valid))
    assert total / count == pytest.approx(scores[lm.order])
    # samples are comments: tokens then one <eos>
    for _ in range(20):
        s = lm.sample(rng, 32)
        assert s[-1] == EOS and EOS not in s[:-1] and len(s) <= 32 and UNK not in s


def test_the_frame_blind_control_ignores_the_frame():
    """Table 1's frame-blind row: order chosen on validation, scores are the LM's log-likelihood whatever
    the frame, and its comments come from the LM (never <unk>)."""
    import jax
    train = ["哈哈哈", "好想去海边", "下雪了", "好想去海边", "哈哈", "下雪了啊"] * 20
    vocab = CharVocab.build(train, min_count=1)
    lm, scores = FrameBlindLM.fit(train, ["好想去海边", "下雪了"], vocab, max_len=12, orders=(1, 2, 3))
    assert set(scores) == {1, 2, 3} and lm.lm.order == min(scores, key=scores.get)
    frames = [np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)]
    texts = ["下雪了", "下雪了"]
    got = lm.log_prob(np.stack(frames), texts, jax.random.PRNGKey(0))
    assert got[0] == got[1] == pytest.approx(lm.lm.log_prob(vocab.encode("下雪了", 12)))
    comments = lm.comments(np.stack(frames), 50, jax.random.PRNGKey(1))
    assert len(comments) == 2 and all(len(cs) == 50 for cs in comments)
    assert all(set(c) <= set("".join(train)) for cs in comments for c in cs)
    assert comments == lm.comments(np.stack(frames), 50, jax.random.PRNGKey(1))       # seeded
