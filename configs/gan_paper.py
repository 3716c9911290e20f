"""The main job, E-GA end to end, with the paper's settings unchanged (configs/gan.py is the CPU default).

  python -m ega_jax.main --config=configs/gan_paper.py --workdir=W

Data, then the stage-1 prerequisites (trained into W/image_vae and W/text_vae unless stage1.*_dir
name finished runs), then the conditional WGAN, then danmaku for the test key frames. A rerun with
the same workdir resumes whatever is unfinished. On the embedded default and a CPU budget of minutes
these optimisers learn too slowly for the comments to relate to their frames (numbers in
configs/gan.py); they are the settings for long GPU runs.
"""

import ml_collections

from configs import default, image_vae, text_vae


def prerequisite(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A stage-1 config nested in the main job: the job's own stage, seed and dataset apply to it."""
    for key in ("stage", "seed", "data"):
        del config[key]
    return config


def get_config():
    config = ml_collections.ConfigDict()
    config.stage = "gan"
    config.seed = 0
    config.data = default.data_config()
    # Stage 1 (paper 2.1, 2.3): the image VAE and the sentence VAE, each with its whole config
    # (configs/image_vae.py, configs/text_vae.py: SGD lr 0.1 momentum 0.6, clip 1.0, batch 32).
    # *_dir: finished runs to use instead of training W/image_vae, W/text_vae.
    config.stage1 = ml_collections.ConfigDict(dict(
        image_vae_dir="", text_vae_dir="",
        image_vae=prerequisite(image_vae.get_config()),
        text_vae=prerequisite(text_vae.get_config())))
    # Paper 2.2: G is [h_v, tau] -> 1000 -> 500 -> h_s with batch norm, D is [h_v, h_s] -> 2000 ->
    # 1000 -> 1 without, leaky ReLU 0.01. noise tau: 64-dimensional. n_critic 5 and weight clipping
    # at 0.01 as in the WGAN paper (Arjovsky et al.); penalty="gp" uses a gradient penalty of gp_weight.
    # mismatch: share of the critic's fake side that is real h_s under another frame's h_v (a
    # matching-aware critic, Reed et al. 2016); 0 is the paper's critic. mismatch_decay_steps > 0: the
    # share moves linearly from mismatch to mismatch_final over that many steps (0: constant).
    # conditioning: how the critic sees h_v, "concat" (the paper) or "projection" (an inner product
    # with its last hidden layer).
    # mode_seeking: weight of a mode-seeking term in G's loss (MSGAN, Mao et al. 2019); 0 is the paper's.
    config.gan = ml_collections.ConfigDict(dict(
        noise_dim=64, g_hidden=(1000, 500), d_hidden=(2000, 1000), leak=0.01,
        n_critic=5, penalty="clip", clip=0.01, gp_weight=10.0, mismatch=0.0, mismatch_final=0.0,
        mismatch_decay_steps=0, conditioning="concat", mode_seeking=0.0))
    # Paper 2.3: RMSProp, learning rate 1e-5, decay 0.9; no gradient clipping.
    config.gan_optimizer = ml_collections.ConfigDict(dict(name="rmsprop", lr=1e-5, decay=0.9, momentum=0.0,
                                                          b1=0.9, b2=0.999, clip_norm=0.0))
    # Paper 2.3: batch 32. A step is n_critic critic updates and one generator update.
    config.gan_train = ml_collections.ConfigDict(dict(
        batch_size=32, num_steps=3000, log_every=250, eval_every=1000, checkpoint_every=1000,
        keep_checkpoints=3, sample_every=1000, data_parallel=False))
    # Comments per test key frame and their decoding (greedy, sample, topk, beam). Greedy: the noise
    # draws already make a frame's comments diverse, and sampling from generated latents adds
    # misspellings (measured on the embedded default).
    # candidates: noise draws per comment; above 1 the critic picks num_per_frame of them, the best
    # scores less overlap_penalty x the n-gram overlap with the comments already picked (ega.py
    # select_comments). 1 is the paper: every draw is shown.
    # score: what the critic judges, "latent" (G's h_s) or "decoded" (the decoded comment's mu_s).
    config.generate = ml_collections.ConfigDict(dict(
        num_per_frame=10, strategy="greedy", temperature=0.8, top_k=10, beam_size=5,
        candidates=1, overlap_penalty=0.0, score="latent"))
    return config
