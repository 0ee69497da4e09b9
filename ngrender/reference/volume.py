"""Neural volume app (NVR): fixed-step ray marching through the unit cube with emission-absorption
compositing and early termination. Deterministic: samples at t_near + (i + u) dt, dt = sqrt(3) / n_steps, u = 1/2
or (jitter) a hash of the pixel and the view's seed in [0, 1)."""
from __future__ import annotations

import numpy as np

from ..apps.views import VOLUME_MODES as MODES, VolumeView
from ..model import Model
from .camera import pixel_jitter, primary_rays
from .output import heat_map, to_uint8
from .field import Network, field_network


def render(model: Model, width: int, height: int, view: VolumeView,
           network: Network | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(image (h, w, 3) uint8, samples per pixel (h, w))."""
    network = network or field_network(model)
    o, d, t_near, t_far = primary_rays(view.camera, width, height)
    n = o.shape[0]
    dt = view.dt
    u = pixel_jitter(width, height, view.seed) if view.jitter else np.float32(0.5)
    t = (t_near + u * dt).astype(np.float32)
    trans = np.ones(n, np.float32)
    colour = np.zeros((n, 3), np.float32)
    steps = np.zeros(n, np.int32)
    active = t_near <= t_far
    min_t = np.float32(view.min_transmittance)
    for _ in range(view.n_steps + 1):
        active &= (t <= t_far) & (trans >= min_t)
        idx = np.nonzero(active)[0]
        if idx.size == 0:
            break
        out = network(o[idx] + t[idx, None] * d[idx])
        sigma = out[:, 3] * np.float32(view.density_scale)
        alpha = np.float32(1.0) - np.exp(-sigma * dt).astype(np.float32)
        weight = trans[idx] * alpha
        colour[idx] += weight[:, None] * out[:, :3]
        trans[idx] *= np.float32(1.0) - alpha
        t[idx] += dt
        steps[idx] += 1
    mode = MODES[view.mode]
    if mode == 0:
        rgb = colour + trans[:, None] * np.asarray(view.background, np.float32)[None, :]
    elif mode == 1:
        rgb = np.repeat((np.float32(1.0) - trans)[:, None], 3, axis=1)
    else:
        s = steps.astype(np.float32) / np.float32(view.n_steps)
        rgb = heat_map(s)
    return to_uint8(rgb).reshape(height, width, 3), steps.reshape(height, width)
