"""Builds (if needed) and summarises the dataset: the embedded default unless --config.data.dir is set.

  python -m ega_jax.main --config=configs/data.py --workdir=/tmp/ega
"""

from configs import default


def get_config():
    return default.get_config()        # stage "data"
