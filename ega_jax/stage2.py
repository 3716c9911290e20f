"""Stage 2 (paper 2.2, 2.3): the conditional WGAN from frame latents to sentence latents.

The stage-1 image encoder phi_v, sentence encoder phi_s and decoder psi_s are
restored from their stage workdirs and stay frozen: since they never change,
the real pairs (mu_v of a key frame, mu_s of one of its comments) are encoded
once up front and the GAN trains on them in memory. Only G and D have
parameters in the GAN state.

One training step is one generator update preceded by ``n_critic`` critic
updates on fresh real pairs, as in Arjovsky et al. (2017); the critic is kept
1-Lipschitz by weight clipping (default) or a gradient penalty.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ega_jax import defaults, losses, stage1, train
from ega_jax.data.vocab import CharVocab, load_vocab
from ega_jax.models.wgan import Critic, Generator

# ---------------------------------------------------------------------------------------------
# The frozen stage-1 models


@dataclasses.dataclass
class Stage1:
    """Restored, frozen stage-1 models: what encoding and generation need."""
    image_model: Any
    image_variables: dict
    text_model: Any
    text_params: dict
    vocab: CharVocab
    max_len: int

    def encode_images(self, images, batch: int = 256) -> np.ndarray:
        return encode_images(self.image_model, self.image_variables, images, batch)

    def encode_frames(self, frames_uint8) -> np.ndarray:
        """uint8 (F, H, W, 3) frames of any size -> mu_v, resized and scaled as in training."""
        return self.encode_images(stage1.frames_to_input(frames_uint8, self.image_model.image_size))

    def encode_texts(self, texts, batch: int = 512) -> np.ndarray:
        def mu_s(chunk):
            tokens = jnp.asarray(np.stack([self.vocab.encode(t, self.max_len) for t in chunk]))
            return _text_encode(self.text_model, self.text_params, tokens)[0]
        return map_in_batches(mu_s, texts, batch, self.text_model.latent_dim)


def map_in_batches(fn, rows, batch: int, out_dim: int) -> np.ndarray:
    """fn (a jitted encoder) over rows in batches of at most `batch`, as one (N, out_dim) array:
    a bounded batch keeps device memory flat and the compiled shapes few."""
    out = [np.asarray(fn(rows[i:i + batch])) for i in range(0, len(rows), batch)]
    return np.concatenate(out) if out else np.zeros((0, out_dim), np.float32)


@functools.partial(jax.jit, static_argnums=0)
def _image_encode(model, variables, images):
    from ega_jax.models.image_vae import ImageVAE
    return model.apply(variables, images, method=ImageVAE.encode)


@functools.partial(jax.jit, static_argnums=0)
def _text_encode(model, params, tokens):
    from ega_jax.models.text_vae import TextVAE
    return model.apply({"params": params}, tokens, method=TextVAE.encode)


def _stage_config(workdir: str):
    if not os.path.exists(os.path.join(workdir, "FINISHED.json")):
        raise FileNotFoundError(f"{workdir} holds no finished stage-1 run (no FINISHED.json)")
    return defaults.load(workdir)


def load_image_vae(image_vae_dir: str):
    """(ImageVAE, its variables) of a finished image-VAE run."""
    icfg = _stage_config(image_vae_dir)
    image_model = stage1.image_model(icfg.image_vae)
    image_state, _ = train.restore_latest(image_vae_dir, train.abstract(
        stage1.init_image_state(image_model, train.make_optimizer(icfg.optimizer), jax.random.PRNGKey(0))))
    return image_model, {"params": image_state.params, "batch_stats": image_state.batch_stats}


def encode_images(image_model, image_variables, images, batch: int = 256) -> np.ndarray:
    """mu_v of float images in [-1, 1] (what the pipeline yields), in batches."""
    return map_in_batches(lambda x: _image_encode(image_model, image_variables, jnp.asarray(x))[0], images, batch,
                          image_model.latent_dim)


def load_stage1(image_vae_dir: str, text_vae_dir: str) -> Stage1:
    """Rebuilds both stage-1 models from their saved configs and restores their final checkpoints."""
    tcfg = _stage_config(text_vae_dir)
    vocab = load_vocab(text_vae_dir)
    image_model, image_variables = load_image_vae(image_vae_dir)
    text_model = stage1.text_model(tcfg.text_vae, len(vocab))
    text_state, _ = train.restore_latest(text_vae_dir, train.abstract(
        stage1.init_text_state(text_model, train.make_optimizer(tcfg.optimizer), jax.random.PRNGKey(0),
                               tcfg.input.max_len)))
    return Stage1(image_model, image_variables, text_model, text_state.params, vocab, tcfg.input.max_len)


# ---------------------------------------------------------------------------------------------
# The GAN


@flax.struct.dataclass
class GANState:
    step: jax.Array
    params: dict            # {"generator": ..., "critic": ...}
    batch_stats: dict       # the generator's batch norm statistics
    opt_state: dict         # {"generator": ..., "critic": ...}


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
        raise ValueError(f"gan.penalty={cfg.penalty!r}; use clip (weight clipping) or gp (gradient penalty)")
    return GAN(Generator(latent_s, tuple(cfg.g_hidden), cfg.leak), Critic(tuple(cfg.d_hidden), cfg.leak),
               train.make_optimizer(opt_cfg), train.make_optimizer(opt_cfg), cfg.noise_dim, cfg.n_critic,
               cfg.penalty, cfg.clip, cfg.gp_weight)


def critic_loss(gan: GAN, d_params, h_v, real, fake, rng):
    """-(E[D(h_s|h_v)] - E[D(G(tau|h_v)|h_v)]): the critic maximises the Wasserstein estimate."""
    d = lambda hs: gan.critic.apply({"params": d_params}, h_v, hs)
    w = jnp.mean(d(real)) - jnp.mean(d(fake))
    loss = -w
    if gan.penalty == "gp":
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
            gan, d_params, h_v, real, jax.lax.stop_gradient(fake), r_gp)
        updates, d_opt = gan.d_tx.update(grads, d_opt, d_params)
        d_params = optax.apply_updates(d_params, updates)
        if gan.penalty == "clip":
            d_params = clip_weights(d_params, gan.clip)
        return (d_params, d_opt, bs), (loss, w)

    d_rng, g_rng = jax.random.split(rng)
    (d_params, d_opt, bs), (d_losses, ws) = jax.lax.scan(
        critic_update, (state.params["critic"], state.opt_state["critic"], bs),
        (batch["real_v"], batch["real_s"], jax.random.split(d_rng, gan.n_critic)))

    def g_loss_fn(g_params):
        fake, new_bs = fake_of(batch["gen_v"], g_rng, g_params, bs)
        return -jnp.mean(gan.critic.apply({"params": d_params}, batch["gen_v"], fake)), new_bs

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


def encode_split(s1: Stage1, data_dir: str, split: str) -> LatentPairs:
    from ega_jax.data import records
    frames = records.read_records(records.find_shards(data_dir, split))
    frames.sort(key=lambda r: (r["video_id"], r["keyframe_second"]))
    frame_h_v = s1.encode_frames([r["image"] for r in frames])
    texts = [c for r in frames for c in r["comments"]]
    frame_of = np.asarray([i for i, r in enumerate(frames) for _ in r["comments"]], np.int64)
    return LatentPairs(frame_h_v[frame_of], s1.encode_texts(texts), frame_of, frames, frame_h_v)


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


# ---------------------------------------------------------------------------------------------
# The main job


def ensure_stage1(config, stage: str, stage_dir: str, log=print) -> None:
    """Trains a missing (or resumes an unfinished) stage-1 prerequisite; skips a finished one."""
    if os.path.exists(os.path.join(stage_dir, "FINISHED.json")):
        log(f"{stage}: finished run found in {stage_dir}; skipped")
        return
    sub = defaults.image_vae_config() if stage == "image_vae" else defaults.text_vae_config()
    # The main job's overrides of the shared sections apply to its prerequisites too.
    for section in ("data", "input", "image_vae", "text_vae", "optimizer"):
        sub[section] = config[section].to_dict()
    sub.seed, sub.kl.mu0 = config.seed, config.kl.mu0
    # The main job's (gan_train) or a baseline's (train) data-parallel switch applies to its prerequisites.
    sub.train.data_parallel = (config.get("gan_train") or config.train).get("data_parallel", False)
    sub.train.num_steps = config.stage1[f"{stage}_steps"]
    if stage == "text_vae" and config.stage1.text_vae_optimizer.name:
        sub.optimizer.update(name=config.stage1.text_vae_optimizer.name, lr=config.stage1.text_vae_optimizer.lr)
    log(f"{stage}: no finished run in {stage_dir}; training it ({sub.train.num_steps} steps)")
    defaults.save(sub, stage_dir)
    stage1.run(sub, stage_dir)


def _write_generated(gen, pairs: LatentPairs, config, workdir: str, log=print) -> dict:
    import html
    from PIL import Image
    from ega_jax import metrics
    from ega_jax.data import world_recipes
    g = config.generate
    out_dir = os.path.join(workdir, "generated")
    os.makedirs(os.path.join(out_dir, "frames"), exist_ok=True)
    comments = gen.comments_for_features(pairs.frame_h_v, g.num_per_frame, jax.random.PRNGKey(config.seed),
                                        strategy=g.strategy, temperature=g.temperature, top_k=g.top_k,
                                        beam_size=g.beam_size)
    page = ["<!doctype html><meta charset='utf-8'><title>E-GA generated danmaku</title>",
            "<style>body{font-family:sans-serif} .f{display:inline-block;width:300px;vertical-align:top;"
            "margin:8px} img{width:192px;image-rendering:pixelated}</style>",
            f"<h1>Generated danmaku for {len(pairs.frames)} test key frames</h1>",
            f"<p>strategy {html.escape(g.strategy)}, {g.num_per_frame} per frame</p>"]
    md = [f"# Generated danmaku ({g.strategy}, {g.num_per_frame} per frame)", ""]
    samples = open(os.path.join(out_dir, "samples.jsonl"), "w", encoding="utf-8")
    for r, cs in zip(pairs.frames, comments):
        key = f"{r['video_id']}:{r['keyframe_second']}"
        name = f"{r['video_id']}_{r['keyframe_second']:05d}.png"
        Image.fromarray(r["image"]).save(os.path.join(out_dir, "frames", name))
        title = key + (f" [{r['scene']}]" if r["scene"] else "")
        page.append(f"<div class='f'><img src='frames/{name}'><br><b>{html.escape(title)}</b><ul>"
                    + "".join(f"<li>{html.escape(c)}</li>" for c in cs) + "</ul></div>")
        md += [f"## {title}", "", f"![{key}](frames/{name})", ""] + [f"- {c}" for c in cs] + [""]
        for c in cs:
            samples.write(json.dumps({"keyframe_id": key, "image": os.path.join("frames", name), "model": "ega",
                                      "comment": c}, ensure_ascii=False) + "\n")
    samples.close()
    with open(os.path.join(out_dir, "index.html"), "w", encoding="utf-8") as f:
        f.write("\n".join(page))
    with open(os.path.join(out_dir, "generated.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md))
    result = {"frames": len(pairs.frames), "comments": sum(len(c) for c in comments), "dir": out_dir}
    if all(r["scene"] for r in pairs.frames):
        lex = {s["name"]: s["lexicon"] for s in world_recipes.SCENES}
        rel = metrics.relation([(r["scene"], cs) for r, cs in zip(pairs.frames, comments)], lex)
        result["relation"] = rel
    for r, cs in list(zip(pairs.frames, comments))[:6]:
        log(f"  {r['video_id']} @ {r['keyframe_second']}s" + (f" [{r['scene']}]" if r["scene"] else "")
            + ": " + " | ".join(cs[:6]))
    return result


def run(config, workdir: str) -> int:
    """The main job: data, missing stage-1 prerequisites, the WGAN, then danmaku for the test key frames."""
    import time
    from ega_jax import data_job, generation
    t0 = time.time()
    data_dir = data_job.resolve_dataset(config)
    image_dir, text_dir, gan_dir = generation.stage_dirs(config, workdir)
    ensure_stage1(config, "image_vae", image_dir)
    ensure_stage1(config, "text_vae", text_dir)
    s1 = load_stage1(image_dir, text_dir)
    size = s1.image_model.image_size
    train_pairs = encode_split(s1, data_dir, "train")
    test_pairs = encode_split(s1, data_dir, "test")
    print(f"gan: {len(train_pairs.h_s)} real (mu_v, mu_s) pairs from {len(train_pairs.frames)} train key frames, "
          f"{len(test_pairs.h_s)} test pairs; stage-1 models frozen")
    gan = make_gan(config.gan, config.gan_optimizer, s1.text_model.latent_dim)
    dv, ds = s1.image_model.latent_dim, s1.text_model.latent_dim
    b = config.gan_train.batch_size

    def write_samples(state, step, wd):
        gen = generation.Generator(s1, gan, state, size)
        cs = gen.comments_for_features(test_pairs.frame_h_v[:6], 5, jax.random.PRNGKey(step), strategy="greedy")
        path = os.path.join(wd, "samples", f"comments_{step:06d}.md")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            for r, c in zip(test_pairs.frames, cs):
                f.write(f"- {r['video_id']}:{r['keyframe_second']} {r['scene']}: " + " | ".join(c) + "\n")
        return path

    task = train.Task(
        name="gan",
        init_state=lambda rng: gan.init(rng, dv, ds),
        train_step=functools.partial(gan_train_step, gan=gan),
        train_batches=lambda start: pair_batches(train_pairs, b, gan.n_critic, config.seed, start,
                                                 jax.process_index(), jax.process_count()),
        eval_step=functools.partial(gan_eval_step, gan=gan),
        eval_batches=lambda: eval_batches(test_pairs, b),
        finalize_eval=finalize_gan_eval,
        write_samples=write_samples,
        batch_axes={"real_v": 1, "real_s": 1},      # (n_critic, B, d): one batch per critic update
    )
    state = train.train_and_evaluate(task, config.gan_train, gan_dir, config.seed)
    result = _write_generated(generation.Generator(s1, gan, state, size), test_pairs, config, workdir)
    if "relation" in result:
        rel = result["relation"]
        print(f"relation to the true scene: {rel['relation']:.2f} of {rel['mentioning']} comments that name a scene "
              f"(of {rel['total']}); chance {rel['chance']:.2f}")
    print(f"done in {time.time() - t0:.0f}s. Generated danmaku: {result['dir']}/index.html (and generated.md, "
          f"samples.jsonl); models: {image_dir}, {text_dir}, {gan_dir}")
    return 0
