"""The kernels' output conventions (shaders/lib/output.glsl): quantisation to 8 bits and the heat colour; the
PSNR every comparison of images reports."""
from __future__ import annotations

import math

import numpy as np


def psnr_db(mse: float, peak: float = 1.0) -> float:
    """PSNR in dB of a mean squared error of values in [0, peak] (inf when the error is 0)."""
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / float(mse))


def heat_map(s: np.ndarray) -> np.ndarray:
    """The kernels' heat colour for s in [0, 1] (blue -> green -> red), as output.glsl's heat_map."""
    return np.stack([s, np.float32(4.0) * s * (np.float32(1.0) - s), np.float32(1.0) - s], axis=1)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """The shaders' quantisation: floor(clamp(c, 0, 1) * 255 + 0.5)."""
    return np.floor(np.clip(rgb, 0.0, 1.0) * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)
