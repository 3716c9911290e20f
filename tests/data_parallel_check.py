"""Run by tests/test_train.py in a subprocess with 4 forced CPU devices
(XLA_FLAGS=--xla_force_host_platform_device_count=4 must be set before jax is imported).

Trains each stage's real step function through the shared loop twice, on one device and data
parallel over all four, on the same in-memory batches, and prints a JSON report.
"""

import functools
import json
import os
import sys
import tempfile

import jax
import ml_collections
import numpy as np
import optax

from configs import gan_paper
from ega_jax import ega, train, vae
from ega_jax.models.image_vae import ImageVAE
from ega_jax.models.text_vae import TextVAE

B, L, V = 8, 10, 20
# The stages whose data-parallel run is also interrupted and resumed (the loop's restore is the same for
# every stage; one with batch statistics-free VAE state and the GAN's two-optimizer state cover it).
RESUMED = ("text_vae", "gan")


def tokens(rng, b):
    t = rng.integers(4, V, size=(b, L)).astype(np.int32)
    t[:, -3:] = 0
    t[:, -4] = 2
    return t


def stream(kind, seed):
    def gen(start):
        t = start
        while True:
            rng = np.random.default_rng([seed, t])
            if kind == "text":
                yield {"s1": tokens(rng, B), "s2": tokens(rng, B)}
            elif kind == "image":
                yield {"image": rng.uniform(-1, 1, (B, 16, 16, 3)).astype(np.float32)}
            else:
                yield {"real_v": rng.normal(size=(3, B, 6)).astype(np.float32),
                       "real_s": rng.normal(size=(3, B, 5)).astype(np.float32),
                       "gen_v": rng.normal(size=(B, 6)).astype(np.float32)}
            t += 1
    return gen


def tasks():
    kl = ml_collections.ConfigDict(dict(mu0=2.0, weight=1.0, anneal="linear", anneal_start=0, anneal_steps=4))
    text = TextVAE(V, embed_dim=8, hidden=16, latent_dim=4)
    image = ImageVAE(features=(4, 8), latent_dim=4, image_size=16)
    paper = gan_paper.get_config()                    # the paper's sections, small
    paper.gan.update(noise_dim=3, g_hidden=(16, 8), d_hidden=(16, 8), n_critic=3, penalty="gp")
    paper.gan_optimizer.lr = 1e-3
    gan = ega.make_gan(paper.gan, paper.gan_optimizer, 5)
    return {
        "text_vae": train.Task("text_vae", lambda r: vae.init_text_state(text, optax.adam(1e-2), r, L),
                               functools.partial(vae.text_train_step, kl=kl, semantic_weight=1.0),
                               stream("text", 0)),
        # Packed sequences sort the whole (split) batch: still the single-device result.
        "text_vae_packed": train.Task("text_vae", lambda r: vae.init_text_state(text, optax.adam(1e-2), r, L),
                                      functools.partial(vae.text_train_step, kl=kl, semantic_weight=1.0,
                                                        length_bucket=4, packed=True),
                                      stream("text", 0)),
        "image_vae": train.Task("image_vae", lambda r: vae.init_image_state(image, optax.adam(1e-2), r),
                                functools.partial(vae.image_train_step, kl=kl), stream("image", 1)),
        "gan": train.Task("gan", lambda r: gan.init(r, 6, 5), functools.partial(ega.gan_train_step, gan=gan),
                          stream("gan", 2), batch_axes={"real_v": 1, "real_s": 1}),
    }


def cfg(steps, dp):
    return ml_collections.ConfigDict(dict(batch_size=B, num_steps=steps, log_every=100, eval_every=100,
                                          checkpoint_every=2, keep_checkpoints=2, sample_every=100,
                                          data_parallel=dp))


def leaves(state):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves((state.params, getattr(state, "batch_stats", None)))]


def main():
    report = {"devices": jax.device_count()}
    quiet = lambda *_: None
    with tempfile.TemporaryDirectory() as tmp:
        for name, task in tasks().items():
            single = train.train_and_evaluate(task, cfg(5, False), os.path.join(tmp, name, "single"), 0, quiet)
            split = train.train_and_evaluate(task, cfg(5, True), os.path.join(tmp, name, "split"), 0, quiet)
            a, b = leaves(single), leaves(split)
            moved = max(float(np.max(np.abs(x - y))) for x, y in zip(a, leaves(task.init_state(
                jax.random.split(jax.random.PRNGKey(0), 3)[0]))))
            report[name] = {
                "max_diff_split_vs_single": max(float(np.max(np.abs(x - y))) for x, y in zip(a, b)),
                "moved_from_init": moved,
                "params_replicated": all(len(x.sharding.device_set) == 4 and x.sharding.is_fully_replicated
                                         for x in jax.tree_util.tree_leaves(split.params)),
            }
            if name in RESUMED:
                # Interrupted at step 3 and resumed, data parallel: restores into replicated arrays.
                train.train_and_evaluate(task, cfg(3, True), os.path.join(tmp, name, "resumed"), 0, quiet)
                resumed = train.train_and_evaluate(task, cfg(5, True), os.path.join(tmp, name, "resumed"), 0, quiet)
                report[name]["max_diff_resumed_vs_split"] = max(float(np.max(np.abs(x - y)))
                                                                for x, y in zip(b, leaves(resumed)))
        # The batch really is split: each device holds B/4 rows, along the declared axis.
        dp = train.DataParallel(B)
        batch = next(stream("gan", 2)(0))
        sharded = dp.shard_batch(batch, {"real_v": 1, "real_s": 1})
        report["shard_shapes"] = {k: sorted({tuple(s.data.shape) for s in v.addressable_shards})
                                  for k, v in sharded.items()}
        report["shard_devices"] = len({s.device for s in sharded["gen_v"].addressable_shards})
        # ... and XLA reduces the gradients across devices.
        t = tasks()["text_vae"]
        state = dp.replicate(t.init_state(jax.random.PRNGKey(0)))
        step = jax.jit(t.train_step, in_shardings=(dp.replicated, {"s1": dp.sharding(0), "s2": dp.sharding(0)},
                                                   dp.replicated), out_shardings=dp.replicated)
        text_batch = dp.shard_batch(next(stream("text", 0)(0)))
        hlo = step.lower(state, text_batch, jax.random.PRNGKey(0)).compile().as_text()
        report["all_reduce_in_step"] = "all-reduce" in hlo
        try:
            train.DataParallel(6)
        except ValueError as e:
            report["indivisible_error"] = str(e)
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
