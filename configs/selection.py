"""E-GA's selection settings, chosen on the validation videos: relation against naming share.

  python -m ega_jax.main --config=configs/selection.py --workdir=W --config.study.ega_dir=MAIN_JOB_W

The main job's trained G generates for every validation key frame under each setting of the grid
(candidates x overlap_penalty x score: what the critic picks from; no retraining). Results:
W/selection.md, .csv and selection.png; the target and the choice: docs/relevance.md.
"""

import ml_collections

from configs import gan


def get_config():
    config = gan.get_config()
    config.stage = "selection"
    config.study = ml_collections.ConfigDict(dict(
        ega_dir="",                                   # a finished main-job workdir (required)
        candidates=(1, 2, 4, 8),                      # draws per shown comment; 1: the paper's, no selection
        overlap_penalties=(0.0, 2.0),
        scores=("latent", "decoded"),
        # The research target: relation >= this, naming share within this of the humans', diversity >= this.
        min_relation=0.95, naming_gap=0.10, min_diversity=0.9,
    ))
    return config
