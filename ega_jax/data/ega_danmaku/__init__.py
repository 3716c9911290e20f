"""TFDS dataset `ega_danmaku`: key frames and their danmaku (see ega_danmaku_dataset_builder)."""
