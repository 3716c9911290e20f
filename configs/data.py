"""Builds (if needed) and summarises the dataset: the embedded default unless --config.data.dir is set.

  python -m ega_jax.main --config=configs/data.py --workdir=/tmp/ega
"""

from ega_jax import defaults


def get_config():
    config = defaults.base_config()
    config.stage = "data"
    return config
