"""The interface every comment model implements (E-GA and the baselines), and what they share.

A ``CommentModel`` turns frames into comments (``comments``) and scores comments for frames
(``log_prob``, the ranking score of Table 1). Each model maps uint8 frames to its own frame
representation (``frame_features``) and implements generation and scoring on those. All of them
decode through ``ega_jax.decoding``'s one sampler and beam search (``decoder=`` builds a model's
``tokens_to_logits``; every model here has the GRU decoder's layout, ``decoding.gru_decoder``).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ega_jax import decoding, metrics
from ega_jax.runs import ConfigError

STRATEGIES = ("greedy", "sample", "topk", "beam")


def decode_texts(params, vocab, max_len: int, z, strategy: str = "greedy", rng=None, temperature: float = 0.8,
                 top_k: int = 10, beam_size: int = 5, decoder=decoding.gru_decoder) -> list[str]:
    """Comments from a comment decoder (its params and ``decoder``, see ega_jax.decoding) for each row of z."""
    rng = jax.random.PRNGKey(0) if rng is None else rng
    if strategy == "greedy":
        tokens = decoding.greedy(params, z, max_len, decoder=decoder)
    elif strategy == "sample":
        tokens = decoding.sample(params, z, rng, max_len, temperature=temperature, decoder=decoder)
    elif strategy == "topk":
        tokens = decoding.sample(params, z, rng, max_len, temperature=temperature, top_k=top_k, decoder=decoder)
    elif strategy == "beam":
        tokens = decoding.beam_search(params, z, max_len, beam_size, decoder=decoder)[0][:, 0]
    else:
        raise ConfigError(f"strategy {strategy!r}; use one of {STRATEGIES}")
    return [vocab.decode(t) for t in np.asarray(tokens)]


def mc_log_prob(params, z, tokens, log_weights=None, chunk: int = 4096, decoder=decoding.gru_decoder) -> np.ndarray:
    """log (1/K) sum_k w_k P(tokens | z_k) for z (N, K, d), tokens (N, L): a conditional
    log-likelihood marginalised over K draws of the decoder's input (noise or latent);
    log_weights (N, K) turn it into an importance-sampling estimate."""
    n, k = z.shape[:2]
    rows = max(1, chunk // k)
    out = []
    for i in range(0, n, rows):
        zz, tt = jnp.asarray(z[i:i + rows]), jnp.asarray(tokens[i:i + rows])
        m = zz.shape[0]
        lp = decoding.sequence_log_prob(params, zz.reshape(m * k, -1), jnp.repeat(tt, k, axis=0),
                                       decoder=decoder).reshape(m, k)
        if log_weights is not None:
            lp = lp + jnp.asarray(log_weights[i:i + rows])
        out.append(np.asarray(jax.scipy.special.logsumexp(lp, axis=1) - np.log(k)))
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


class CommentModel:
    """What the harness needs of any frame -> comments model (E-GA and the baselines).

    Subclasses set ``name``, ``vocab``, ``max_len`` and ``image_size`` and implement
    ``frame_features`` (uint8 frames -> the model's frame representation),
    ``comments_for_features`` and ``log_prob_for_features``.
    """
    name: str
    default_strategy = "greedy"

    def frame_features(self, images_uint8) -> np.ndarray:
        raise NotImplementedError

    def comments_for_features(self, feats: np.ndarray, n: int, rng, **decode_kw) -> list[list[str]]:
        raise NotImplementedError

    def log_prob_for_features(self, feats: np.ndarray, tokens: np.ndarray, rng) -> np.ndarray:
        raise NotImplementedError

    def tokens(self, texts) -> np.ndarray:
        return np.stack([self.vocab.encode(t, self.max_len) for t in texts]) if len(texts) else \
            np.zeros((0, self.max_len), np.int32)

    def comments(self, images_uint8, n: int, rng, **decode_kw) -> list[list[str]]:
        """uint8 (F, H, W, 3) frames of any size -> n comments per frame."""
        return self.comments_for_features(self.frame_features(images_uint8), n, rng, **decode_kw)

    def log_prob(self, images_uint8, texts, rng) -> np.ndarray:
        """log P(text_i | frame_i) for aligned frames and texts (the ranking score)."""
        return self.log_prob_for_features(self.frame_features(images_uint8), self.tokens(texts), rng)


def per_frame(texts: list[str], n: int) -> list[list[str]]:
    """A flat list of n comments per frame -> one list per frame."""
    return [texts[i * n:(i + 1) * n] for i in range(len(texts) // n)]


def select_comments(texts: list[str], scores: np.ndarray, n: int, overlap_penalty: float) -> list[int]:
    """Which n of one frame's candidate comments to show: greedily the candidate with the best
    standardised score (E-GA: its critic's; a baseline: its own likelihood) minus overlap_penalty x its
    largest n-gram overlap (metrics.overlap, the similarity Diversity averages) with a comment already
    chosen (maximal marginal relevance, Carbonell & Goldstein 1998). overlap_penalty 0: the n best
    scores. Returns indices into texts, in the order chosen."""
    s = (scores - scores.mean()) / (scores.std() + 1e-6)
    grams = [metrics.ngrams(t) for t in texts]
    nearest = np.zeros(len(texts))          # largest overlap with a chosen comment so far
    chosen: list[int] = []
    for _ in range(min(n, len(texts))):
        value = s - overlap_penalty * nearest
        value[chosen] = -np.inf
        best = int(np.argmax(value))
        chosen.append(best)
        nearest = np.maximum(nearest, [metrics.overlap(grams[best], g) for g in grams])
    return chosen


def select_per_frame(texts: list[list[str]], scores, n: int, overlap_penalty: float) -> list[list[str]]:
    """select_comments for every frame: (frames, k) candidates and scores -> n comments per frame."""
    return [[ts[i] for i in select_comments(ts, sc, n, overlap_penalty)] for ts, sc in zip(texts, scores)]


@dataclasses.dataclass
class LikelihoodSelected(CommentModel):
    """A comment model given E-GA's selection budget: for n comments it draws n x candidates of its own
    and keeps n of them by its own log P(comment | frame) (``select_comments``, the same overlap
    penalty as E-GA's critic selection). The baselines' "best of k" rows in evaluate's controls; its
    ranking scores are the base model's."""
    base: CommentModel
    candidates: int = 8
    overlap_penalty: float = 0.0

    def __post_init__(self):
        self.name = f"{self.base.name}_selected"
        self.vocab, self.max_len, self.image_size = self.base.vocab, self.base.max_len, self.base.image_size

    def frame_features(self, images_uint8):
        return self.base.frame_features(images_uint8)

    def tokens(self, texts):
        return self.base.tokens(texts)

    def comments_for_features(self, feats, n: int, rng, **decode_kw):
        g_rng, s_rng = jax.random.split(rng)
        k = n * self.candidates
        texts = self.base.comments_for_features(feats, k, g_rng, **decode_kw)
        flat = [t for ts in texts for t in ts]
        scores = self.log_prob_for_features(np.repeat(np.asarray(feats), k, axis=0), self.tokens(flat), s_rng)
        return select_per_frame(texts, np.asarray(scores).reshape(len(texts), k), n, self.overlap_penalty)

    def log_prob_for_features(self, feats, tokens, rng):
        return self.base.log_prob_for_features(feats, tokens, rng)
