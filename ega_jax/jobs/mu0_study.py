"""The `mu0_study` stage (configs/mu0_study.py; paper 3.4, Table 2 and Fig. 3): the sentence VAE at several mu0.

For each data source (the embedded default, and real danmaku text when
``study.real_danmaku`` names a folder of XML) and each mu0, a sentence VAE is
trained with the shared loop (resumable, one workdir per run), then evaluated
on the test split. Writes to the workdir:

  mu0_results.md / .csv   mu0, capacity C(mu0), test reconstruction loss (from a sample of
                          N(mu, sigma^2): rec; from mu: rec_mu), KL, active units
  mu0_samples.md          Table 2: input, reconstruction from mu, generation from N(mu, sigma^2)
  capacity.png            Fig. 3(a): C(mu0) with the studied values marked
  reconstruction.png      Fig. 3(b): test reconstruction loss vs mu0, per source
"""

from __future__ import annotations

import copy
import os

import jax
import matplotlib
import numpy as np

from ega_jax import losses, reports, runs, train, vae
from ega_jax.data import build, build_lib, records
from ega_jax.data.vocab import load_vocab

matplotlib.use("Agg")     # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


def _sources(config, workdir):
    sources = {"controlled_world": runs.resolve_dataset(config)}
    if config.study.real_danmaku:
        out = os.path.join(workdir, "real_danmaku_dataset")
        if not build_lib.is_built(out):
            build.build_text_dataset(config.study.real_danmaku, out, config.study.window_seconds,
                                         build_lib.BuildConfig.from_dict(config.data.build.to_dict()))
        sources["real_danmaku"] = out
    return sources


def _sample_texts(data_dir, n, seed):
    test = records.read_split(data_dir, "test")
    pool = sorted({c for r in test for c in r["comments"] if 2 <= len(c) <= 16})
    rng = np.random.default_rng(seed)
    return [pool[i] for i in rng.choice(len(pool), size=min(n, len(pool)), replace=False)]


def _plots(rows, mu0s, workdir):
    grid = np.linspace(0, max(max(mu0s), 1) * 1.25, 200)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(grid, losses.embedding_capacity(grid), label="C(mu0), Eq. 4")
    ax.plot(mu0s, losses.embedding_capacity(np.asarray(mu0s, float)), "o", label="studied")
    ax.set(xlabel="mu0", ylabel="embedding capacity C", title="Fig. 3(a): embedding capacity")
    ax.legend()
    reports.save_figure(fig, os.path.join(workdir, "capacity.png"))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for source in sorted({r["source"] for r in rows}):
        rs = [r for r in rows if r["source"] == source]
        line, = ax.plot([r["mu0"] for r in rs], [r["rec_mu"] for r in rs], "o-", label=f"{source}, from mu")
        ax.plot([r["mu0"] for r in rs], [r["rec"] for r in rs], "x--", color=line.get_color(),
                label=f"{source}, from a sample")
    ax.set(xlabel="mu0", ylabel="test reconstruction loss (nats / pair)", title="Fig. 3(b): reconstruction vs mu0")
    ax.legend()
    reports.save_figure(fig, os.path.join(workdir, "reconstruction.png"))


def run(config, workdir: str) -> int:
    mu0s = [float(m) for m in config.study.mu0s]
    rows, samples = [], []
    for source, data_dir in _sources(config, workdir).items():
        texts = _sample_texts(data_dir, config.study.num_samples, config.seed)
        vocab = load_vocab(data_dir)
        model = vae.text_model_from(config.text_vae, len(vocab))
        for mu0 in mu0s:
            c = copy.deepcopy(config)
            c.kl.mu0 = mu0
            c.train.num_steps = config.study.num_steps
            run_dir = os.path.join(workdir, source, f"mu0_{mu0:g}")
            task = vae.text_vae_task(c, data_dir)
            print(f"mu0 study: {source}, mu0 = {mu0:g} -> {run_dir}")
            state = train.train_and_evaluate(task, c.train, run_dir, c.seed)
            ev = train.evaluate(task, jax.jit(task.eval_step), state, jax.random.PRNGKey(c.seed))
            rows.append({"source": source, "mu0": mu0, "capacity": float(losses.embedding_capacity(mu0)), **ev})
            for r in vae.reconstruction_table(state.params, model, vocab, texts, c.input.max_len,
                                                 jax.random.PRNGKey(c.seed)):
                samples.append({"source": source, "mu0": f"{mu0:g}", **r})
    cols = ["source", "mu0", "capacity", "rec", "rec_mu", "nll_per_char", "kl", "sem", "active_units"]
    reports.write_csv(os.path.join(workdir, "mu0_results.csv"), rows, cols)
    fmt = [{k: (f"{r[k]:.4g}" if isinstance(r[k], float) else r[k]) for k in cols} for r in rows]
    table = reports.markdown_table(fmt)
    reports.write_text(os.path.join(workdir, "mu0_results.md"), "# mu0 study: test-set metrics of the sentence VAE\n\n"
                       + table)
    ordered = sorted(samples, key=lambda r: (r["source"], r["input"], float(r["mu0"])))
    reports.write_text(os.path.join(workdir, "mu0_samples.md"),
                       "# mu0 study: input, reconstruction from mu, generation from a sample of N(mu, sigma^2)\n\n"
                       + reports.markdown_table(ordered))
    _plots(rows, mu0s, workdir)
    print(table)
    print(f"wrote {workdir}/mu0_results.md, mu0_results.csv, mu0_samples.md, capacity.png, reconstruction.png")
    return 0
