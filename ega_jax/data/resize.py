"""The one way a frame becomes a model input's size, in the dataset build and at inference alike.

``resize_frame`` takes a full-size RGB frame (a decoded video frame, an image of a frame folder, an
image given to ``ega_jax.generate``) to size x size with PIL's bicubic filter, which widens its
support when it shrinks (anti-aliased). The build stores its result as the key frame; inference
applies it to the frame it is given, so a frame gets the same mu_v either way (tests/test_video.py).
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def resize_frame(frame, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W, 3) RGB (or a PIL image) -> uint8 (height, width, 3); size is (width, height).
    A frame already of that size is returned as it is."""
    image = frame if isinstance(frame, Image.Image) else Image.fromarray(np.asarray(frame, np.uint8))
    image = image.convert("RGB")
    if image.size != tuple(size):
        image = image.resize(tuple(size), Image.BICUBIC)
    return np.asarray(image)


def resize_frames(frames, size: tuple[int, int]) -> np.ndarray:
    """resize_frame over a sequence of frames -> uint8 (F, height, width, 3)."""
    width, height = size
    if len(frames) == 0:
        return np.zeros((0, height, width, 3), np.uint8)
    return np.stack([resize_frame(f, size) for f in frames])
