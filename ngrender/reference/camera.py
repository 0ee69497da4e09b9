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
    d_cam = np.stack([u.ravel(), v.ravel(), -np.ones(u.size, np.float32)], axis=1)
    rot = camera.c2w[:3, :3].astype(np.float32)
    d = d_cam @ rot.T
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    o = np.broadcast_to(camera.origin.astype(np.float32), d.shape).copy()
    return o, d.astype(np.float32)


def unit_box_hits(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit distances of rays through [0,1]^3 (slab method); t_far < t_near means a miss.
    Entry is clamped to 0 for rays that start inside."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.float32(1.0) / d
        t0 = (np.float32(0.0) - o) * inv
        t1 = (np.float32(1.0) - o) * inv
    t_near = np.maximum(np.minimum(t0, t1).max(axis=1), np.float32(0.0))
    t_far = np.maximum(t0, t1).min(axis=1)
    return t_near.astype(np.float32), t_far.astype(np.float32)
