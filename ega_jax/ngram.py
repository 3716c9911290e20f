"""A character n-gram language model with interpolated Kneser-Ney smoothing: the frame-blind control.

It sees comments only, never a frame: what it scores and generates is what any model gets from the
text alone. It works on the same token ids the comment models decode (``CharVocab.encode``: rare
characters are <unk>, comments cut at max_len with <eos> last), so its negative log-likelihood per
token compares with theirs token for token.

Interpolated Kneser-Ney (Chen and Goodman 1998, with one discount per order, D = n1 / (n1 + 2 n2)):

  P(w | h) = max(c(h w) - D, 0) / c(h .) + D N1+(h .) / c(h .) P(w | h')

with c the counts at the highest order and continuation counts N1+(. h w) below it; the lowest
order interpolates with the uniform distribution over the tokens a comment can hold (every id but
<pad> and <bos>). A context never seen backs off to h' entirely. ``sample`` draws comments from
it; ``nll`` scores token sequences.
"""

from __future__ import annotations

import collections
import math
from typing import Sequence

import numpy as np

from ega_jax.comment_model import CommentModel
from ega_jax.data.vocab import BOS, EOS, PAD, UNK


class KneserNeyLM:
    def __init__(self, order: int, vocab_size: int):
        if order < 1:
            raise ValueError(f"order {order}: use 1 or more")
        self.order, self.vocab_size = order, vocab_size
        # counts[k][context of k-1 tokens][token]: raw counts at the highest order, continuation counts below
        self.counts = [collections.defaultdict(collections.Counter) for _ in range(order + 1)]
        self.discount = [0.0] * (order + 1)
        self.outcomes = np.array([i for i in range(vocab_size) if i not in (PAD, BOS)])

    @staticmethod
    def _body(tokens: Sequence[int]) -> list[int]:
        """A comment's tokens up to and including its <eos> (as the decoders score them)."""
        out = []
        for t in tokens:
            t = int(t)
            if t == PAD:
                break
            out.append(t)
            if t == EOS:
                break
        if not out or out[-1] != EOS:
            out.append(EOS)
        return out

    def fit(self, sequences) -> "KneserNeyLM":
        n = self.order
        top = self.counts[n]
        for seq in sequences:
            body = self._body(seq)
            padded = [BOS] * (n - 1) + body
            for i in range(n - 1, len(padded)):
                top[tuple(padded[i - n + 1:i])][padded[i]] += 1
        # continuation counts: N1+(. h w) from the order above
        for k in range(n - 1, 0, -1):
            below = self.counts[k]
            for ctx, nxt in self.counts[k + 1].items():
                for w in nxt:
                    below[ctx[1:]][w] += 1
        for k in range(1, n + 1):
            hist = collections.Counter(c for nxt in self.counts[k].values() for c in nxt.values() if c <= 2)
            n1, n2 = hist[1], hist[2]
            self.discount[k] = n1 / (n1 + 2 * n2) if n1 + n2 else 0.5
        self._totals = [{ctx: (sum(nxt.values()), len(nxt)) for ctx, nxt in self.counts[k].items()}
                        for k in range(n + 1)]
        return self

    def _levels(self, context: Sequence[int]):
        """(counts of the next token, c(h .), types N1+(h .), discount) from order 1 up, for the
        histories of context that were seen (an unseen one is skipped: full back-off)."""
        ctx = tuple(context)[-(self.order - 1):] if self.order > 1 else ()
        ctx = (BOS,) * (self.order - 1 - len(ctx)) + ctx
        for k in range(1, self.order + 1):
            h = ctx[len(ctx) - (k - 1):] if k > 1 else ()
            total = self._totals[k].get(h)
            if total:
                yield self.counts[k][h], total[0], total[1], self.discount[k]

    def prob(self, context: Sequence[int], w: int) -> float:
        """P(w | the last order-1 tokens of context)."""
        if w in (PAD, BOS):
            return 0.0
        p = 1.0 / len(self.outcomes)
        for seen, c_h, types, d in self._levels(context):
            p = max(seen.get(w, 0) - d, 0.0) / c_h + d * types / c_h * p
        return p

    def distribution(self, context: Sequence[int]) -> np.ndarray:
        """P(. | context) over every token id (zero for <pad> and <bos>)."""
        p = np.zeros(self.vocab_size)
        p[self.outcomes] = 1.0 / len(self.outcomes)
        for seen, c_h, types, d in self._levels(context):
            p = p * (d * types / c_h)
            ids = np.fromiter(seen.keys(), int, len(seen))
            p[ids] += np.maximum(np.fromiter(seen.values(), float, len(seen)) - d, 0.0) / c_h
        return p

    def log_prob(self, tokens: Sequence[int]) -> float:
        """log P(comment): its tokens up to and including <eos>."""
        body = self._body(tokens)
        ctx = [BOS] * (self.order - 1)
        out = 0.0
        for w in body:
            out += math.log(self.prob(ctx, w))
            ctx = (ctx + [w])[-(self.order - 1):] if self.order > 1 else []
        return out

    def nll(self, sequences) -> tuple[float, int]:
        """(summed negative log-likelihood in nats, number of tokens scored, <eos> included)."""
        total, count = 0.0, 0
        for seq in sequences:
            total -= self.log_prob(seq)
            count += len(self._body(seq))
        return total, count

    def sample(self, rng: np.random.Generator, max_len: int) -> list[int]:
        """One comment drawn from the model: token ids, <eos> last, at most max_len tokens; never <unk>
        (as no decoder emits it: ega_jax.decoding.never_emitted)."""
        ctx, out = [BOS] * max(self.order - 1, 0), []
        for i in range(max_len):
            p = self.distribution(ctx)
            p[UNK] = 0.0
            if i == max_len - 1:
                w = EOS
            else:
                w = int(rng.choice(self.vocab_size, p=p / p.sum()))
            out.append(w)
            if w == EOS:
                break
            ctx = (ctx + [w])[-(self.order - 1):] if self.order > 1 else []
        return out


def choose_order(train, valid, vocab_size: int, orders=(2, 3, 4, 5, 6)) -> tuple[KneserNeyLM, dict]:
    """The order with the lowest validation NLL per token, refit-free: each order is fitted on train
    and scored on valid once. Returns (the chosen model, {order: validation NLL per token})."""
    scores, models = {}, {}
    for n in orders:
        lm = KneserNeyLM(n, vocab_size).fit(train)
        total, count = lm.nll(valid)
        scores[n], models[n] = total / max(count, 1), lm
    best = min(scores, key=scores.get)
    return models[best], scores


class FrameBlindLM(CommentModel):
    """The frame-blind control of Table 1 as a comment model: an n-gram LM that never sees the frame.
    It generates by sampling from the LM (the same comments' distribution for every frame) and ranks a
    frame's candidates by their log-likelihood under the LM. Whatever it scores, a model gets from the
    text alone."""
    name = "ngram_lm"

    def __init__(self, lm: KneserNeyLM, vocab, max_len: int, seed: int = 0):
        self.lm, self.vocab, self.max_len, self.seed = lm, vocab, max_len, seed

    @classmethod
    def fit(cls, train_comments, valid_comments, vocab, max_len: int, orders=(2, 3, 4, 5, 6), seed: int = 0):
        """Fitted on train_comments, its order chosen on valid_comments; returns (model, {order: NLL/token})."""
        enc = lambda cs: [vocab.encode(c, max_len) for c in cs]
        lm, scores = choose_order(enc(train_comments), enc(valid_comments), len(vocab), orders)
        return cls(lm, vocab, max_len, seed), scores

    def frame_features(self, images_uint8):
        return np.zeros((len(images_uint8), 1), np.float32)       # nothing of the frame

    def comments_for_features(self, feats, n: int, rng, **decode_kw):
        # rng: a JAX key (as every model gets); the LM samples with numpy, seeded from it.
        g = np.random.default_rng([self.seed, int(np.asarray(rng).ravel()[-1])])
        return [[self.vocab.decode(self.lm.sample(g, self.max_len)) for _ in range(n)] for _ in range(len(feats))]

    def log_prob_for_features(self, feats, tokens, rng):
        return np.asarray([self.lm.log_prob(t) for t in np.asarray(tokens)], np.float64)
