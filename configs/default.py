"""The settings every experiment starts from: the dataset and the two stage-1 VAEs (paper 2.1, 2.3).

Not a job by itself (its stage is "data"); configs/image_vae.py, text_vae.py, data.py, mu0_study.py
and the baselines build on it, and configs/gan_paper.py nests the stage-1 configs.
"""

import ml_collections


def data_config() -> ml_collections.ConfigDict:
    """Where the dataset comes from. dir: a dataset built by `python -m ega_jax.data.build`; empty
    means the embedded default, a controlled world rendered and built under default_root."""
    return ml_collections.ConfigDict(dict(
        dir="",
        default_root="data/controlled_world",
        # A text-only dataset for the sentence VAE alone (configs/text_vae_real.py): every danmaku
        # file (XML or protobuf) below this folder, comments of one file within window_seconds
        # grouped as one key frame's, held out by file; built into dir when dir holds none yet.
        danmaku_only="", window_seconds=10.0,
        # How a dataset is built from videos + danmaku (ega_jax/data/build_lib.py: BuildConfig).
        build=dict(
            videos="", danmaku="", out="",
            image_size=64,             # key frames are stored as image_size x image_size JPEG
            num_shards=4,              # TFRecord shards per split
            # Whole videos 70 / 10 / 20 train / validation / test; "keyframe" is the paper's 80/20 by
            # key frame (3.1), where a test frame's video is also in train.
            split_by="video", train_fraction=0.7, validation_fraction=0.1,
            min_comments=1,            # key frames with fewer comments are not written
            vocab_min_count=2,         # characters seen fewer times in train comments become <unk>
            max_seconds=0,             # 0: whole videos
            # 1-fps frames -> MPEG-7 SCD -> affinity propagation (paper 3.1); window bounds memory;
            # metric: -squared L2 (default) or -L1 (the SCD standard's matching); both separate distinct shots.
            keyframes=dict(scd_coefficients=256, damping=0.5, max_iter=200, convergence_iter=15, window=1024,
                           metric="sqeuclidean"),
            # Danmaku cleaning (ega_jax/data/danmaku_xml.py: CleaningConfig).
            cleaning=dict(max_chars=64, art_min_chars=8, art_ratio=0.3, symbol_ratio=0.85, symbol_min_len=12,
                          control_ratio=0.5),
        ),
        # The embedded default (ega_jax/data/controlled_world.py: WorldConfig).
        world=dict(
            num_videos=160,            # 160 x 30 s: ~120 test key frames, enough to separate models
            seconds_per_video=30, fps=4,
            size=96,                   # rendered frames are size x size
            scene_seconds=(4, 9),      # a scene lasts this many seconds (inclusive range)
            comments_per_second=8.0,
            scene_share=0.6,           # share of comments drawn from the scene's lexicon
            typo_rate=0.05,
            lag_rate=0.1,              # share of comments sent up to 1.5 s late
            noise_rate=0.03,           # art/script comments that the cleaning must drop
            seed=0,
        ),
    ))


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.stage = "data"
    config.seed = 0
    config.data = data_config()
    # The training loop (ega_jax/train.py). Paper 2.3: batch 32.
    # data_parallel: split each batch over all devices (and hosts).
    config.train = ml_collections.ConfigDict(dict(
        batch_size=32, num_steps=1000, log_every=50, eval_every=250, checkpoint_every=250,
        keep_checkpoints=3, sample_every=500, data_parallel=False))
    # Paper 2.3: SGD, learning rate 0.1, momentum 0.6, global-norm clipping at 1.0.
    # (decay is RMSProp's, used when name="rmsprop"; b1, b2 Adam's, when name="adam".)
    # decay_steps > 0: the learning rate follows a cosine from lr down to 0 at that step (0: constant).
    config.optimizer = ml_collections.ConfigDict(dict(
        name="sgd", lr=0.1, momentum=0.6, decay=0.9, b1=0.9, b2=0.999, clip_norm=1.0, decay_steps=0))
    # Comments are cut to max_len characters (with <eos>); shuffle_buffer: tf.data's training shuffle
    # buffer, in elements (0: the whole split, counted when the stream starts; input_pipeline.shuffle_size).
    config.input = ml_collections.ConfigDict(dict(max_len=32, shuffle_buffer=2048))
    # Relaxed KL (Eq. 3) with mu0 = 2 (paper 3.4), weighted by alpha annealed 0 -> weight (1, paper 2.3)
    # over anneal_steps from anneal_start; anneal: linear, sigmoid or constant. Eq. 3 is twice the
    # textbook KL, so mu0 = 0 with weight 0.5 trains on the textbook ELBO.
    config.kl = ml_collections.ConfigDict(dict(mu0=2.0, weight=1.0, anneal="linear", anneal_start=0,
                                               anneal_steps=500))
    # Image VAE: 4 stride-2 conv layers (DCGAN, paper 2.1). features are DCGAN's (64, 128, 256, 512)
    # divided by 4 so that a step takes ~0.1 s on 2 CPU cores; latent 64. reconstruction: Eq. 5
    # summed over the pixels of an image ("sum") or averaged ("mean", which lets the KL term swamp it).
    config.image_vae = ml_collections.ConfigDict(dict(features=(16, 32, 64, 128), latent_dim=64, image_size=64,
                                                      reconstruction="sum"))
    # Sentence VAE (paper Fig. 2): character embedding 128, GRU 256, latent 64; semantic_weight
    # scales Eq. 7's cosine loss; word_dropout replaces decoder inputs by <unk> (0: off, as in the paper);
    # decoder_dropout drops units of the decoder's embedded inputs and GRU outputs in training (0: off).
    # packed: a train step computes the loss on packed sequences (ega_jax.models.packing: sorted by
    # length, the real characters only, as PyTorch's pack_padded_sequence): the same loss, no work
    # on padding (measured on one device; on a data-parallel mesh it sorts the whole batch and gives
    # the single-device result, tests/test_train.py, at a speed not measured there).
    # length_bucket: packed, the packed arrays are sized by the first multiple of 8 characters that
    # holds the batch's mean length; not packed, the batch is cut to the first multiple of 8 that
    # holds its longest comment (the same loss: only padding is cut). 0: always the full max_len.
    # packed_backends: where packing is used; on other backends (GPU, TPU) the step is the padded
    # one at full width, 1.75-2.1x the packed step on an H200/H100 (ega_jax/vae.py: text_step_layout).
    # init_decoder: a workdir whose GRU LM (text_score's W/text_score/gru_lm.msgpack, the decoder's size)
    # starts the sentence VAE's embedding, decoder GRU and output layer; z's weights into the decoder
    # start at 0, so the VAE begins as that LM (ega_jax/vae.py: warm_start_decoder). "": random init.
    config.text_vae = ml_collections.ConfigDict(dict(embed_dim=128, hidden=256, latent_dim=64, semantic_weight=1.0,
                                                     word_dropout=0.0, decoder_dropout=0.0, length_bucket=8,
                                                     packed=True,
                                                     packed_backends=("cpu",), init_decoder=""))
    return config
