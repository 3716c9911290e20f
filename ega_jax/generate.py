r"""Danmaku from a trained model's workdir: E-GA (the main job's --workdir) or a baseline's.

  python -m ega_jax.generate --workdir=W --image=frame.png [-n 10] [--strategy=beam]
  python -m ega_jax.generate --workdir=W --video=in.mp4 --out=out.xml [--format=ass] [--preview=preview.html]

--image prints n comments for the image. --video (a video file or a frame folder,
see ega_jax/data/video.py) runs the key-frame pipeline (1 fps -> SCD -> affinity
propagation), generates comments for every key frame and spreads them over the
time of its cluster, then writes a Bilibili XML danmaku file (loads in
CommentCoreLibrary-style players) or, with --format=ass, ASS subtitles.
--preview also writes an HTML page that plays the video (or steps through the
frame folder) with the generated danmaku flying over it (ega_jax/player.py).
"""

from __future__ import annotations

import sys

import jax
import numpy as np
from absl import app, flags, logging
from PIL import Image

from ega_jax import player, runs, tracks, zoo
from ega_jax.data import ass, danmaku_xml
from ega_jax.data.video import VideoDecodeError

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Workdir of a finished main job (configs/gan.py) or baseline "
                    "(configs/encdec.py, cvae.py, simple_gan.py).", required=True)
flags.DEFINE_string("image", None, "An image to comment on.")
flags.DEFINE_string("video", None, "A video to write a danmaku track for.")
flags.DEFINE_string("out", None, "Output file for --video.")
flags.DEFINE_enum("format", "xml", ["xml", "ass"], "Output format for --video.")
flags.DEFINE_string("preview", None, "With --video: also write this HTML page, the video (or frame folder) "
                    "playing with the generated danmaku over it.")
flags.DEFINE_integer("n", 10, "Comments per image (with --image).", short_name="n")
flags.DEFINE_enum("strategy", None, ["greedy", "sample", "topk", "beam"],
                  "Decoding strategy (default: the model's config.generate.strategy).")
flags.DEFINE_float("temperature", 0.8, "Sampling temperature (sample, topk).")
flags.DEFINE_integer("top_k", 10, "Characters kept by topk.")
flags.DEFINE_integer("beam_size", 5, "Beam width (beam).")
flags.DEFINE_float("comments_per_second", 2.0, "Density of the danmaku track (with --video).")
flags.DEFINE_integer("seed", 0, "Random seed for the noise draws and sampling.")


def main(argv):
    del argv
    if not FLAGS["verbosity"].present:
        # Orbax logs every checkpoint read at INFO; the comments are what this command is for.
        logging.set_verbosity(logging.WARNING)
    if bool(FLAGS.image) == bool(FLAGS.video):
        raise app.UsageError("give exactly one of --image or --video")
    if FLAGS.video and not FLAGS.out:
        raise app.UsageError("--video needs --out")
    if FLAGS.preview and not FLAGS.video:
        raise app.UsageError("--preview needs --video")
    try:
        gen, config = zoo.load(FLAGS.workdir)
    except (runs.RunError, runs.ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rng = jax.random.PRNGKey(FLAGS.seed)
    kw = dict(strategy=FLAGS.strategy or config.generate.strategy, temperature=FLAGS.temperature, top_k=FLAGS.top_k, beam_size=FLAGS.beam_size)
    if FLAGS.image:
        try:
            image = np.asarray(Image.open(FLAGS.image).convert("RGB"))
        except OSError as e:
            print(f"error: {FLAGS.image}: cannot be read as an image ({e})", file=sys.stderr)
            return 1
        for c in gen.comments(image[None], FLAGS.n, rng, **kw)[0]:
            print(c)
        return 0
    try:
        track = tracks.video_track(gen, FLAGS.video, rng, FLAGS.comments_per_second, **kw)
    except VideoDecodeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if FLAGS.format == "xml":
        danmaku_xml.write_danmaku_xml(track, FLAGS.out)
    else:
        ass.write_ass(track, FLAGS.out)
    print(f"wrote {len(track)} comments over {track[-1].time:.0f}s to {FLAGS.out}" if track else
          f"no comments generated; wrote an empty track to {FLAGS.out}")
    if FLAGS.preview:
        player.write_preview(FLAGS.preview, FLAGS.video, track)
        print(f"preview: {FLAGS.preview} (open it in a browser; it plays {FLAGS.video} with the danmaku)")
    return 0


if __name__ == "__main__":
    app.run(main)
