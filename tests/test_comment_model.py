"""ega_jax/comment_model.py: what every comment model shares; selecting n of more draws by a score."""

import numpy as np

from ega_jax import metrics
from ega_jax.comment_model import CommentModel, LikelihoodSelected, select_comments


def test_critic_selection_takes_the_best_scores_then_trades_them_for_new_ngrams():
    texts = ["海边好美", "海边好美啊", "下雪了", "哈哈哈", "海边好美呀"]
    scores = np.asarray([5.0, 4.9, 1.0, 0.0, 4.8])
    # No penalty: the n best critic scores, best first.
    assert select_comments(texts, scores, 3, 0.0) == [0, 1, 4]
    # With a penalty the near-copies of the first pick give way to new n-grams. Standardised, the
    # scores are (0.86, 0.81, -0.99, -1.45, 0.77); 1 and 4 overlap 0 by 0.83: 0.81 - 3 x 0.83 < -0.99.
    chosen = select_comments(texts, scores, 3, 3.0)
    assert chosen[0] == 0 and set(chosen[1:]) == {2, 3}
    # The penalty is the overlap Diversity averages, so the picked set is at least as diverse.
    assert metrics.diversity_of([texts[i] for i in chosen]) > metrics.diversity_of([texts[i] for i in [0, 1, 4]])
    assert sorted(select_comments(texts, scores, 9, 1.0)) == [0, 1, 2, 3, 4]    # fewer candidates than n
    # Scores are standardised per frame: scaling them does not change the choice.
    assert select_comments(texts, 100 * scores, 3, 3.0) == chosen


class _Fake(CommentModel):
    """Draw j of frame f is "f" + "啊" * j; its log-likelihood is -(length), so shorter is likelier."""
    name, vocab, max_len, image_size = "fake", None, 16, 8

    def __init__(self):
        self.asked = []

    def frame_features(self, images):
        return np.arange(len(images), dtype=np.float32)[:, None]

    def comments_for_features(self, feats, n, rng, **kw):
        self.asked.append(n)
        return [[f"{int(f[0])}" + "啊" * j for j in range(n)] for f in feats]

    def tokens(self, texts):
        return np.asarray([[len(t)] for t in texts])

    def log_prob_for_features(self, feats, tokens, rng):
        assert len(feats) == len(tokens)
        return -tokens[:, 0].astype(float)


def test_likelihood_selection_draws_the_budget_and_keeps_the_likeliest():
    import jax
    base = _Fake()
    sel = LikelihoodSelected(base, candidates=4, overlap_penalty=0.0)
    assert sel.name == "fake_selected" and sel.max_len == 16
    out = sel.comments(np.zeros((2, 8, 8, 3), np.uint8), 3, jax.random.PRNGKey(0))
    assert base.asked == [12]                          # n x candidates draws per frame
    assert out == [["0", "0啊", "0啊啊"], ["1", "1啊", "1啊啊"]]     # the 3 likeliest of 12, best first
    # Its ranking scores are the base model's.
    t = np.asarray([[3], [1]])
    assert list(sel.log_prob_for_features(np.zeros((2, 1)), t, None)) == [-3.0, -1.0]
