"""The Chinese font behind our pictures and pages: mplfonts' Noto Sans CJK (an install requirement)."""

from __future__ import annotations

import os


def noto_cjk_otf() -> str:
    """Path of Noto Sans CJK SC (OpenType) from mplfonts, or "" where it is not installed."""
    try:   # mplfonts (an install requirement) may still be missing on a bare accelerator machine
        import mplfonts
    except ImportError:
        return ""
    path = os.path.join(os.path.dirname(mplfonts.__file__), "fonts", "NotoSansCJKsc-Regular.otf")
    return path if os.path.exists(path) else ""
