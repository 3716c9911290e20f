"""E-GA's stage 2 (paper 2.2, 2.3): the conditional WGAN from frame latents to sentence latents,
and the E-GA comment model built on it.

The stage-1 image encoder phi_v, sentence encoder phi_s and decoder psi_s are restored from their
workdirs and stay frozen (ega_jax/vae.py): since they never change, the real pairs (mu_v of a key
frame, mu_s of one of its comments) are encoded once up front and the GAN trains on them in
memory. Only G and D have parameters in the GAN state.

One training step is one generator update preceded by ``n_critic`` critic updates on fresh real
pairs, as in Arjovsky et al. (2017); the critic is kept 1-Lipschitz by weight clipping (default)
or a gradient penalty. Generation: h_v = mu_v of the frame, k noise draws, G, then psi_s decodes;
optionally the critic picks the k comments from more draws (``select_comments``).
"""

from __future__ import annotations

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ega_jax import losses, reports, runs
from ega_jax.runs import ConfigError
from ega_jax.comment_model import CommentModel, decode_texts, mc_log_prob, per_frame, select_per_frame
from ega_jax.models.wgan import Critic, Generator
from ega_jax.train import GANState, Task, abstract_init, make_optimizer, restore_latest
from ega_jax.vae import FrozenVAEs, load_frozen_vaes

# ---------------------------------------------------------------------------------------------
# The GAN


@dataclasses.dataclass(frozen=True)
class GAN:
    generator: Generator
    critic: Critic
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    noise_dim: int
    n_critic: int
    penalty: str            # "clip" | "gp"
    clip: float
    gp_weight: float
    # Matching-aware critic (Reed et al. 2016, GAN-CLS): this share of the critic's "fake" side is real
    # comment latents paired with another frame's h_v, so the critic must check the pair, not h_s alone.
    mismatch: float = 0.0
    # With mismatch_decay_steps > 0 the share moves linearly from `mismatch` to `mismatch_final` over
    # that many G steps (then stays). Tried because, while mismatched pairs are in the fake side, the
    # best G over-weights what tells frames apart (a scene's phrases); measured, decaying 0.8 to 0
    # lost the frame (relation 0.38 against 0.81 constant, docs/relevance.md), so it is off by default.
    mismatch_final: float = 0.0
    mismatch_decay_steps: int = 0
    # Mode seeking (Mao et al. 2019, MSGAN): the generator also maximises, per frame, the distance
    # between the latents of two noise draws relative to the draws' distance, with this weight
    # (0: the paper's generator loss). Counters a conditional generator that ignores its noise.
    mode_seeking: float = 0.0

    def init(self, rng, latent_v: int, latent_s: int) -> GANState:
        g_rng, d_rng = jax.random.split(rng)
        hv, hs = jnp.zeros((2, latent_v)), jnp.zeros((2, latent_s))
        g = self.generator.init(g_rng, hv, jnp.zeros((2, self.noise_dim)), train=False)
        d = self.critic.init(d_rng, hv, hs)
        params = {"generator": g["params"], "critic": d["params"]}
        return GANState(step=jnp.asarray(0), params=params, batch_stats=g["batch_stats"],
                        opt_state={"generator": self.g_tx.init(params["generator"]),
                                   "critic": self.d_tx.init(params["critic"])})

    @functools.partial(jax.jit, static_argnums=0)
    def generate(self, params, batch_stats, h_v, tau):
        return self.generator.apply({"params": params, "batch_stats": batch_stats}, h_v, tau, train=False)


def make_gan(cfg, opt_cfg, latent_s: int) -> GAN:
    if cfg.penalty not in ("clip", "gp"):
        raise ConfigError(f"gan.penalty={cfg.penalty!r}; use clip (weight clipping) or gp (gradient penalty)")
    conditioning = cfg.conditioning
    if conditioning not in ("concat", "projection"):
        raise ConfigError(f"gan.conditioning={conditioning!r}; use concat (the paper) or projection")
    return GAN(Generator(latent_s, tuple(cfg.g_hidden), cfg.leak),
               Critic(tuple(cfg.d_hidden), cfg.leak, conditioning),
               make_optimizer(opt_cfg), make_optimizer(opt_cfg), cfg.noise_dim, cfg.n_critic,
               cfg.penalty, cfg.clip, cfg.gp_weight, mismatch=cfg.mismatch,
               mismatch_final=cfg.mismatch_final, mismatch_decay_steps=cfg.mismatch_decay_steps,
               mode_seeking=cfg.mode_seeking)


def mismatch_share(gan: GAN, step):
    """The matching-aware share of the critic's fake side at G step `step` (see GAN.mismatch_final)."""
    if gan.mismatch_decay_steps <= 0:
        return jnp.asarray(gan.mismatch, jnp.float32)
    frac = jnp.clip(step / gan.mismatch_decay_steps, 0.0, 1.0)
    return gan.mismatch + (gan.mismatch_final - gan.mismatch) * frac


def critic_loss(gan: GAN, d_params, h_v, real, fake, rng, mismatch=None):
    """-(E[D(h_s|h_v)] - E[D(G(tau|h_v)|h_v)]): the critic maximises the Wasserstein estimate. With
    a mismatch share m (gan.mismatch, or the scheduled share passed in), the fake side is (1 - m)
    generated pairs and m real latents under another row's h_v (the batch rolled by one: random
    pairs, so almost always another frame)."""
    matching_aware = bool(gan.mismatch or (gan.mismatch_final and gan.mismatch_decay_steps > 0))
    # One critic pass over real, fake (and mismatched) pairs: the critic has no batch norm, so rows
    # are independent, and one large matrix product runs faster on a CPU than two or three small ones.
    pairs_v = [h_v, h_v] + ([jnp.roll(h_v, 1, axis=0)] if matching_aware else [])
    pairs_s = [real, fake] + ([real] if matching_aware else [])
    scores = gan.critic.apply({"params": d_params}, jnp.concatenate(pairs_v), jnp.concatenate(pairs_s))
    scores = jnp.mean(scores.reshape(len(pairs_v), -1), axis=1)
    real_score, fake_score = scores[0], scores[1]
    if matching_aware:
        m = gan.mismatch if mismatch is None else mismatch
        fake_score = (1 - m) * fake_score + m * scores[2]
    w = real_score - fake_score
    loss = -w
    if gan.penalty == "gp":
        d = lambda hs: gan.critic.apply({"params": d_params}, h_v, hs)
        loss = loss + gan.gp_weight * losses.gradient_penalty(d, real, fake, rng)
    return loss, w


def clip_weights(params, c: float):
    return jax.tree_util.tree_map(lambda p: jnp.clip(p, -c, c), params)


def gan_train_step(state: GANState, batch, rng, *, gan: GAN):
    """batch: real_v, real_s (n_critic, B, .) for the critic; gen_v (B, dv) for the generator."""
    g_params, bs = state.params["generator"], state.batch_stats

    def fake_of(h_v, rng, g_params, bs):
        tau = jax.random.normal(rng, (h_v.shape[0], gan.noise_dim))
        out, upd = gan.generator.apply({"params": g_params, "batch_stats": bs}, h_v, tau, train=True,
                                       mutable=["batch_stats"])
        return out, upd["batch_stats"]

    def critic_update(carry, inp):
        d_params, d_opt, bs = carry
        h_v, real, rng = inp
        r_fake, r_gp = jax.random.split(rng)
        fake, bs = fake_of(h_v, r_fake, g_params, bs)
        (loss, w), grads = jax.value_and_grad(critic_loss, argnums=1, has_aux=True)(
            gan, d_params, h_v, real, jax.lax.stop_gradient(fake), r_gp, mismatch)
        updates, d_opt = gan.d_tx.update(grads, d_opt, d_params)
        d_params = optax.apply_updates(d_params, updates)
        if gan.penalty == "clip":
            d_params = clip_weights(d_params, gan.clip)
        return (d_params, d_opt, bs), (loss, w)

    d_rng, g_rng = jax.random.split(rng)
    mismatch = mismatch_share(gan, state.step)
    (d_params, d_opt, bs), (d_losses, ws) = jax.lax.scan(
        critic_update, (state.params["critic"], state.opt_state["critic"], bs),
        (batch["real_v"], batch["real_s"], jax.random.split(d_rng, gan.n_critic)))

    def g_loss_fn(g_params):
        if not gan.mode_seeking:
            fake, new_bs = fake_of(batch["gen_v"], g_rng, g_params, bs)
            return -jnp.mean(gan.critic.apply({"params": d_params}, batch["gen_v"], fake)), new_bs
        # Two noise draws per frame in one batch (so batch norm sees both).
        h_v = jnp.concatenate([batch["gen_v"], batch["gen_v"]])
        tau = jax.random.normal(g_rng, (h_v.shape[0], gan.noise_dim))
        fake, upd = gan.generator.apply({"params": g_params, "batch_stats": bs}, h_v, tau, train=True,
                                        mutable=["batch_stats"])
        adv = -jnp.mean(gan.critic.apply({"params": d_params}, h_v, fake))
        f1, f2 = jnp.split(fake, 2)
        t1, t2 = jnp.split(tau, 2)
        ratio = jnp.mean(jnp.abs(f1 - f2)) / jnp.mean(jnp.abs(t1 - t2))
        return adv + gan.mode_seeking / (ratio + 1e-5), upd["batch_stats"]

    (g_loss, bs), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(g_params)
    g_updates, g_opt = gan.g_tx.update(g_grads, state.opt_state["generator"], g_params)
    g_params = optax.apply_updates(g_params, g_updates)
    state = GANState(step=state.step + 1, params={"generator": g_params, "critic": d_params}, batch_stats=bs,
                     opt_state={"generator": g_opt, "critic": d_opt})
    # "loss" is the generator's; the critic's Wasserstein estimate says how far apart the two are.
    return state, {"loss": g_loss, "critic_loss": d_losses[-1], "wasserstein": ws[-1]}


def gan_eval_step(state: GANState, batch, rng, *, gan: GAN):
    mask = batch["mask"].astype(jnp.float32)
    tau = jax.random.normal(rng, (batch["real_v"].shape[0], gan.noise_dim))
    fake = gan.generate(state.params["generator"], state.batch_stats, batch["real_v"], tau)
    d = lambda hs: gan.critic.apply({"params": state.params["critic"]}, batch["real_v"], hs)
    return {"critic_real": jnp.sum(d(batch["real_s"]) * mask), "critic_fake": jnp.sum(d(fake) * mask),
            "count": jnp.sum(mask),
            "fake_norm": jnp.sum(jnp.linalg.norm(fake, axis=-1) * mask),
            "real_norm": jnp.sum(jnp.linalg.norm(batch["real_s"], axis=-1) * mask)}


def finalize_gan_eval(sums):
    n = sums["count"]
    return {"wasserstein": float((sums["critic_real"] - sums["critic_fake"]) / n),
            "fake_norm": float(sums["fake_norm"] / n), "real_norm": float(sums["real_norm"] / n)}


# ---------------------------------------------------------------------------------------------
# Real pairs in memory


@dataclasses.dataclass
class LatentPairs:
    """Every (key frame, comment) pair of a split as (mu_v, mu_s), plus what generation needs."""
    h_v: np.ndarray          # (n_pairs, dv)
    h_s: np.ndarray          # (n_pairs, ds)
    frame_of: np.ndarray     # (n_pairs,) index into frames
    frames: list[dict]       # the split's key-frame records (image, comments, scene, ...)
    frame_h_v: np.ndarray    # (n_frames, dv)


def encode_split(frozen: FrozenVAEs, data_dir: str, split: str) -> LatentPairs:
    # TFRecords need TensorFlow; training and generation from in-memory latents do not.
    from ega_jax.data import records
    frames = records.read_split(data_dir, split)
    frames.sort(key=lambda r: (r["video_id"], r["keyframe_second"]))
    frame_h_v = frozen.encode_frames([r["image"] for r in frames])
    texts = [c for r in frames for c in r["comments"]]
    frame_of = np.asarray([i for i, r in enumerate(frames) for _ in r["comments"]], np.int64)
    return LatentPairs(frame_h_v[frame_of], frozen.encode_texts(texts), frame_of, frames, frame_h_v)


def pair_batches(pairs: LatentPairs, batch_size: int, n_critic: int, seed: int, start: int,
                 process_index: int = 0, process_count: int = 1):
    """The batch of step t depends on (seed, t) alone: a resumed run sees the same batches.
    With several hosts each yields its own 1/process_count of the rows of that global batch."""
    n = len(pairs.h_s)
    rows = slice(process_index * batch_size // process_count, (process_index + 1) * batch_size // process_count)
    t = start
    while True:
        rng = np.random.default_rng([seed, t])
        idx = rng.integers(n, size=(n_critic, batch_size))[:, rows]
        gen = rng.integers(n, size=batch_size)[rows]
        yield {"real_v": pairs.h_v[idx], "real_s": pairs.h_s[idx], "gen_v": pairs.h_v[gen]}
        t += 1


def eval_batches(pairs: LatentPairs, batch_size: int):
    n = len(pairs.h_s)
    for i in range(0, n, batch_size):
        m = min(batch_size, n - i)
        pad = lambda a: np.concatenate([a[i:i + m], np.zeros((batch_size - m,) + a.shape[1:], a.dtype)])
        yield {"real_v": pad(pairs.h_v), "real_s": pad(pairs.h_s), "mask": np.arange(batch_size) < m}


def gan_task(config, frozen: FrozenVAEs, train_pairs: LatentPairs, eval_pairs: LatentPairs) -> tuple[Task, GAN]:
    """The WGAN of stage 2 as a Task for the shared loop, on latent pairs held in memory; evaluated (and
    its samples written) on eval_pairs: the validation split's."""
    gan = make_gan(config.gan, config.gan_optimizer, frozen.text_model.latent_dim)
    selection_settings(config.generate)         # a bad value fails now, not after training
    dv, ds = frozen.image_model.latent_dim, frozen.text_model.latent_dim
    b = config.gan_train.batch_size

    def write_samples(state, step, wd):
        gen = model_for(frozen, gan, state, config.generate)
        cs = gen.comments_for_features(eval_pairs.frame_h_v[:6], 5, jax.random.PRNGKey(step), strategy="greedy")
        return reports.write_text(os.path.join(wd, "samples", f"comments_{step:06d}.md"), "".join(
            f"- {r['video_id']}:{r['keyframe_second']} {r['scene']}: " + " | ".join(c) + "\n"
            for r, c in zip(eval_pairs.frames, cs)))

    task = Task(
        name="gan",
        init_state=lambda rng: gan.init(rng, dv, ds),
        train_step=functools.partial(gan_train_step, gan=gan),
        train_batches=lambda start: pair_batches(train_pairs, b, gan.n_critic, config.seed, start,
                                                 jax.process_index(), jax.process_count()),
        eval_step=functools.partial(gan_eval_step, gan=gan),
        eval_batches=lambda: eval_batches(eval_pairs, b),
        finalize_eval=finalize_gan_eval,
        write_samples=write_samples,
        batch_axes={"real_v": 1, "real_s": 1},      # (n_critic, B, d): one batch per critic update
    )
    return task, gan


# ---------------------------------------------------------------------------------------------
# The E-GA comment model


@dataclasses.dataclass
class EGAModel(CommentModel):
    """E-GA: h_v = mu_v of the frame, G(h_v, tau) a sentence latent, psi_s decodes it.

    candidates > 1: for n comments, G draws n x candidates latents and the critic, which was trained
    to tell a frame's real comments from generated ones and from other frames' comments (gan.mismatch),
    picks n of them (``select_comments``). 1 is the paper's generation: one draw per comment.
    score: what the critic judges for that choice. "decoded": mu_s of each candidate's decoded text,
    encoded again by the frozen phi_s, i.e. the comment that would be shown; "latent": G's h_s itself.
    The critic learnt on real mu_s to tell a frame's comments from other frames' (gan.mismatch), so a
    decoded comment's mu_s is what it judges best: on the main job's G, relation 0.917 -> 0.997 at
    diversity 0.942 -> 0.926 (docs/relevance.md). A latent that G places between two scenes' modes
    decodes to one of them, and only the decoded text says which.
    """
    frozen: FrozenVAEs
    gan: GAN
    state: GANState
    image_size: int
    name = "ega"
    candidates: int = 1
    overlap_penalty: float = 0.0
    score: str = "latent"
    # Monte Carlo draws of tau behind each ranking score.
    score_samples: int = 32

    @property
    def vocab(self):
        return self.frozen.vocab

    @property
    def max_len(self):
        return self.frozen.max_len

    def frame_features(self, images_uint8):
        return self.frozen.encode_frames(images_uint8)

    def latents(self, frame_h_v: np.ndarray, n: int, rng) -> jnp.ndarray:
        h_v = jnp.repeat(jnp.asarray(frame_h_v), n, axis=0)
        tau = jax.random.normal(rng, (h_v.shape[0], self.gan.noise_dim))
        return self.gan.generate(self.state.params["generator"], self.state.batch_stats, h_v, tau)

    def critic_scores(self, frame_h_v: np.ndarray, h_s, per_frame_count: int) -> np.ndarray:
        """D(h_v, h_s) for per_frame_count latents of each frame, (frames, per_frame_count)."""
        h_v = jnp.repeat(jnp.asarray(frame_h_v), per_frame_count, axis=0)
        d = self.gan.critic.apply({"params": self.state.params["critic"]}, h_v, h_s)
        return np.asarray(d).reshape(len(frame_h_v), per_frame_count)

    def decode(self, h_s, strategy: str, rng, **kw) -> list[str]:
        return decode_texts(self.frozen.text_params, self.vocab, self.max_len, h_s, strategy, rng, **kw)

    def comments_for_features(self, frame_h_v, n: int, rng, strategy: str = "greedy", **decode_kw):
        g_rng, d_rng = jax.random.split(rng)
        k = n * self.candidates
        h_s = self.latents(frame_h_v, k, g_rng)
        flat = self.decode(h_s, strategy, d_rng, **decode_kw)
        texts = per_frame(flat, k)
        if self.candidates == 1:
            return texts
        judged = h_s if self.score == "latent" else jnp.asarray(self.frozen.encode_texts(flat))
        scores = self.critic_scores(frame_h_v, judged, k)
        return select_per_frame(texts, scores, n, self.overlap_penalty)

    def log_prob_for_features(self, frame_h_v, tokens, rng):
        k = self.score_samples
        z = np.asarray(self.latents(frame_h_v, k, rng)).reshape(len(frame_h_v), k, -1)
        return mc_log_prob(self.frozen.text_params, z, tokens)


def selection_settings(generate_cfg) -> dict:
    """candidates, overlap_penalty and score of a config's `generate` section, checked."""
    candidates, penalty, score = generate_cfg.candidates, generate_cfg.overlap_penalty, generate_cfg.score
    if not isinstance(candidates, int) or candidates < 1:
        raise ConfigError(f"generate.candidates={candidates!r}; use 1 (one noise draw per comment) or more")
    if not isinstance(penalty, (int, float)) or penalty < 0:
        raise ConfigError(f"generate.overlap_penalty={penalty!r}; use a number >= 0 (0: the best critic scores)")
    if score not in ("decoded", "latent"):
        raise ConfigError(f"generate.score={score!r}; use decoded (the critic judges each candidate's decoded "
                          "comment, encoded again) or latent (G's h_s)")
    return {"candidates": candidates, "overlap_penalty": float(penalty), "score": score}


def model_for(frozen: FrozenVAEs, gan: GAN, state: GANState, generate_cfg) -> EGAModel:
    """The E-GA comment model with the generation settings of a config's `generate` section."""
    return EGAModel(frozen, gan, state, frozen.image_model.image_size, **selection_settings(generate_cfg))


def load(workdir: str, config) -> EGAModel:
    """The E-GA model of a finished main-job workdir (its config.json already read)."""
    image_dir, text_dir, gan_dir = runs.ega_stage_dirs(config, workdir)
    frozen = load_frozen_vaes(image_dir, text_dir)
    gan = make_gan(config.gan, config.gan_optimizer, frozen.text_model.latent_dim)
    state, _ = restore_latest(gan_dir, abstract_init(
        lambda: gan.init(jax.random.PRNGKey(0), frozen.image_model.latent_dim, frozen.text_model.latent_dim)))
    return model_for(frozen, gan, state, config.generate)
