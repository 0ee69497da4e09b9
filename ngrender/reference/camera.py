"""Camera rays and the unit-cube intersection, in float32 as the shaders compute them."""
from __future__ import annotations

import numpy as np

from ..camera import Camera


def camera_rays(camera: Camera, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """World-space origins and unit directions (h*w, 3) float32 through pixel centres, rows top to bottom."""
    f = np.float32(camera.focal(width))
    px = np.arange(width, dtype=np.float32) + np.float32(0.5)
    py = np.arange(height, dtype=np.float32) + np.float32(0.5)
    u, v = np.meshgrid((px - np.float32(width / 2)) / f, -(py - np.float32(height / 2)) / f)
    axes = camera.c2w[:3, :3].astype(np.float32).T  # rows: camera x, y, z axes in world space
    # d = x*u + y*v - z, summed in this order as the shader does (lib/camera.glsl)
    d = axes[0] * u.reshape(-1, 1) + axes[1] * v.reshape(-1, 1) - axes[2]
    d /= np.sqrt(np.sum(d * d, axis=1, keepdims=True))
    o = np.broadcast_to(camera.origin.astype(np.float32), d.shape).copy()
    return o, d.astype(np.float32)


def unit_box_hits(o: np.ndarray, d: np.ndarray, lo: float = 0.0, hi: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit distances of rays through [0,1]^3, or [lo, hi]^3 (slab method); t_far < t_near means a
    miss. Entry is clamped to 0 for rays that start inside."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.float32(1.0) / d
        t0 = (np.float32(lo) - o) * inv
        t1 = (np.float32(hi) - o) * inv
    t_near = np.maximum(np.minimum(t0, t1).max(axis=1), np.float32(0.0))
    t_far = np.maximum(t0, t1).min(axis=1)
    return t_near.astype(np.float32), t_far.astype(np.float32)


def primary_rays(camera: Camera, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(origins, directions, t_near, t_far) of every pixel's ray through the unit cube: how each 3D app starts."""
    o, d = camera_rays(camera, width, height)
    t_near, t_far = unit_box_hits(o, d)
    return o, d, t_near, t_far


def _lowbias32(x: np.ndarray) -> np.ndarray:
    """Wellons' lowbias32 integer hash on uint32 arrays (wrapping), as lib/hash.glsl."""
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return x


def pixel_jitter(width: int, height: int, seed: int) -> np.ndarray:
    """(h*w,) float32 in [0, 1), rows top to bottom: the shader's pixel_jitter((x, y), seed) bit for bit (integer
    hash, then one exact conversion: 24 bits times 2^-24)."""
    y, x = np.meshgrid(np.arange(height, dtype=np.uint32), np.arange(width, dtype=np.uint32), indexing="ij")
    h = _lowbias32(x.reshape(-1) + _lowbias32(y.reshape(-1) + _lowbias32(np.array([seed], np.uint32))))
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)
