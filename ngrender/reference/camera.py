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
