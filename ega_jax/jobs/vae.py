"""The `image_vae` and `text_vae` stages (configs/image_vae.py, configs/text_vae.py), and training them
as prerequisites of the jobs that need frozen stage-1 models (E-GA, CVAE, Simple-GAN)."""

from __future__ import annotations

import time

import jax
import ml_collections

from ega_jax import runs, train, vae


def run(config, workdir: str) -> int:
    """Trains (or resumes) one VAE; the workdir then holds what later stages restore it from."""
    t0 = time.time()
    data_dir = runs.resolve_dataset(config)
    task = (vae.image_vae_task if config.stage == "image_vae" else vae.text_vae_task)(config, data_dir)
    runs.copy_vocab(data_dir, workdir)
    state = train.train_and_evaluate(task, config.train, workdir, config.seed)
    if config.stage == "text_vae" and jax.process_count() > 1:
        # The report evaluates and decodes with the (sharded) state: one host alone would wait forever
        # for the others inside the collective. Rerun it on one host from the finished workdir.
        print("text_vae: text_report.md skipped on a multi-host run")
    elif config.stage == "text_vae":
        t_report = time.time()
        r = vae.text_model_report(task, state, config, data_dir, workdir)
        beam = next(v for k, v in r.items() if k.startswith("beam"))
        real = r["held_out_real_comments"]
        print(f"text_vae: held-out NLL {r['held_out_nll_per_char']:.3f} nats/char; {r['samples']} samples from "
              f"N(0, I): fluency {r['fluency']:.3f} (beam {beam['fluency']:.3f}; held-out real comments "
              f"{'none' if real is None else format(real['fluency'], '.3f')}), diversity {r['diversity']:.3f}, "
              f"verbatim train comments {r['verbatim_share']:.3f} ({workdir}/text_report.md, "
              f"{time.time() - t_report:.0f}s)")
    runs.mark_finished(workdir, config.stage, config.train.num_steps, data_dir)
    print(f"{config.stage}: done in {time.time() - t0:.0f}s; checkpoints in {workdir}/checkpoints, samples in {workdir}/samples, "
          f"TensorBoard logs in {workdir}/tensorboard")
    return 0


def ensure_prerequisite(parent, stage: str, stage_dir: str, log=print) -> None:
    """Trains a missing (or resumes an unfinished) stage-1 prerequisite; skips a finished one.

    Its settings are the parent config's ``stage1.<stage>`` section (a whole image_vae / text_vae
    config, so every override such as --config.stage1.text_vae.kl.anneal_steps reaches it); the
    dataset and seed are the parent's, and the parent's data-parallel switch applies too."""
    if runs.is_finished(stage_dir):
        log(f"{stage}: finished run found in {stage_dir}; skipped")
        return
    sub = ml_collections.ConfigDict(parent.stage1[stage].to_dict())
    sub.stage = stage
    sub.seed = parent.seed
    sub.data = parent.data.to_dict()
    parent_train = parent.gan_train if "gan_train" in parent else parent.train
    sub.train.data_parallel = sub.train.data_parallel or parent_train.data_parallel
    log(f"{stage}: no finished run in {stage_dir}; training it ({sub.train.num_steps} steps)")
    runs.save_config(sub, stage_dir)
    run(sub, stage_dir)
