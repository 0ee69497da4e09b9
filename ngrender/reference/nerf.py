"""NeRF app: instant-ngp's rendering of a trained radiance field, per ray.

March through the unit cube with a fixed step dt (instant-ngp's fine step sqrt(3)/1024 by default); in an empty
occupancy-grid cell, jump by whole steps past the cell's exit without evaluating the network; at each sample in
an occupied cell: position -> hash grid -> density MLP (16 outputs,
density = exp(out[0])); [out, SH degree-4 of the view direction] -> colour MLP -> RGB (sigmoid);
front-to-back alpha compositing, stopping when transmittance < min_transmittance; background behind."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..camera import Camera, orbit
from ..model import Model
from .camera import primary_rays
from .output import heat_map, to_uint8
from .grid import encode_grid
from .mlp import mlp_forward

MODES = {"rgb": 0, "depth": 1, "opacity": 2, "samples": 3}


@dataclass(frozen=True)
class NerfView:
    camera: Camera = field(default_factory=lambda: orbit(30.0, 20.0, 1.6))
    mode: str = "rgb"
    n_steps: int = 1024  # steps along the cube's diagonal: dt = sqrt(3) / n_steps
    min_transmittance: float = 0.01
    use_occupancy: bool = True
    depth_far: float = 3.0
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @property
    def dt(self) -> np.float32:
        return np.float32(np.sqrt(3.0) / self.n_steps)


def sh_encode(d: np.ndarray, degree: int = 4) -> np.ndarray:
    """Real spherical harmonics of unit directions (N, 3), tcnn's SphericalHarmonics (degree**2 values)."""
    x, y, z = (d[:, i].astype(np.float32) for i in range(3))
    xy, xz, yz, x2, y2, z2 = x * y, x * z, y * z, x * x, y * y, z * z
    f = np.float32
    out = [np.full_like(x, f(0.28209479177387814))]
    if degree > 1:
        out += [f(-0.48860251190291987) * y, f(0.48860251190291987) * z, f(-0.48860251190291987) * x]
    if degree > 2:
        out += [f(1.0925484305920792) * xy, f(-1.0925484305920792) * yz,
                f(0.94617469575755997) * z2 - f(0.31539156525251999), f(-1.0925484305920792) * xz,
                f(0.54627421529603959) * x2 - f(0.54627421529603959) * y2]
    if degree > 3:
        out += [f(0.59004358992664352) * y * (f(-3.0) * x2 + y2), f(2.8906114426405538) * xy * z,
                f(0.45704579946446572) * y * (f(1.0) - f(5.0) * z2), f(0.3731763325901154) * z * (f(5.0) * z2 - f(3.0)),
                f(0.45704579946446572) * x * (f(1.0) - f(5.0) * z2), f(1.4453057213202769) * z * (x2 - y2),
                f(0.59004358992664352) * x * (-x2 + f(3.0) * y2)]
    return np.stack(out, axis=1).astype(np.float32)


def occupancy_cells(p: np.ndarray, res: int) -> np.ndarray:
    """Integer occupancy cell (N, 3) holding p (clamped to the cube)."""
    return np.minimum((np.clip(p, 0.0, 1.0) * np.float32(res)).astype(np.int32), res - 1)


def steps_to_leave(cell: np.ndarray, p: np.ndarray, d: np.ndarray, t: np.ndarray, dt: np.float32,
                   res: int) -> np.ndarray:
    """Whole steps of dt (at least one) that take t past the exit of the cell (the shader's steps_to_leave)."""
    bound = (cell.astype(np.float32) + (d >= 0).astype(np.float32)) / np.float32(res)
    with np.errstate(divide="ignore", invalid="ignore"):
        tt = np.where(d != 0, (bound - p) / d, np.float32(1e30)).astype(np.float32)
    t_exit = t + tt.min(axis=1)
    return np.maximum(np.float32(1.0), np.ceil((t_exit - t) / dt)).astype(np.float32)


def radiance(model: Model, p: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(density (N,), rgb (N, 3)) at positions p seen along unit directions d."""
    h = mlp_forward(model.layers, encode_grid(model.geometry, model.grid, np.clip(p, 0.0, 1.0)),
                    model.net.output_activation)
    with np.errstate(over="ignore"):
        sigma = np.exp(h[:, 0]).astype(np.float32)
    rgb_in = np.concatenate([h, sh_encode(d, model.sh_degree)], axis=1)
    rgb = mlp_forward(model.rgb_layers, rgb_in, model.rgb_net.output_activation)
    return sigma, rgb


def occupancy_from_density(model: Model, res: int, dt: float, threshold: float = 0.01, samples: int = 2,
                           seed: int = 0) -> np.ndarray:
    """instant-ngp's rule on a fresh grid: a cell is occupied when density * dt exceeds ``threshold`` at any of
    ``samples`` jittered points in it (the cell centre first). Returns a (res, res, res) uint8 cube [z, y, x]."""
    rng = np.random.default_rng(seed)
    zyx = np.stack(np.meshgrid(*[np.arange(res)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    xyz = zyx[:, ::-1].astype(np.float32)
    occupied = np.zeros(xyz.shape[0], bool)
    for s in range(samples):
        jitter = np.float32(0.5) if s == 0 else rng.random(xyz.shape, dtype=np.float32)
        p = (xyz + jitter) / np.float32(res)
        for start in range(0, p.shape[0], 1 << 16):
            chunk = p[start:start + (1 << 16)]
            h = mlp_forward(model.layers, encode_grid(model.geometry, model.grid, chunk), model.net.output_activation)
            with np.errstate(over="ignore"):
                occupied[start:start + (1 << 16)] |= np.exp(h[:, 0]) * np.float32(dt) > threshold
    return occupied.reshape(res, res, res).astype(np.uint8)


Radiance = Callable[[np.ndarray, np.ndarray], "tuple[np.ndarray, np.ndarray]"]


def render(model: Model, width: int, height: int, view: NerfView,
           radiance_fn: Radiance | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(image (h, w, 3) uint8, network samples per pixel (h, w)); ``radiance_fn(p, d) -> (sigma, rgb)``
    replaces the NumPy networks (the PyTorch benchmark peer)."""
    radiance_fn = radiance_fn or (lambda p, d: radiance(model, p, d))
    o, d, t_near, t_far = primary_rays(view.camera, width, height)
    n = o.shape[0]
    dt = view.dt
    occ = model.occupancy.ravel() if (view.use_occupancy and model.occupancy is not None) else None
    res = model.occupancy.shape[0] if occ is not None else 0
    t = (t_near + np.float32(0.5) * dt).astype(np.float32)
    trans = np.ones(n, np.float32)
    colour = np.zeros((n, 3), np.float32)
    depth = np.zeros(n, np.float32)
    samples = np.zeros(n, np.int32)
    active = t_near <= t_far
    min_t = np.float32(view.min_transmittance)
    for _ in range(view.n_steps + 1):
        active &= (t <= t_far) & (trans >= min_t)
        idx = np.nonzero(active)[0]
        if idx.size == 0:
            break
        p = o[idx] + t[idx, None] * d[idx]
        advance = np.ones(idx.size, np.float32)
        if occ is not None:
            cells = occupancy_cells(p, res)
            empty = occ[cells[:, 0] + res * (cells[:, 1] + res * cells[:, 2])] == 0
            advance[empty] = steps_to_leave(cells[empty], p[empty], d[idx[empty]], t[idx[empty]], dt, res)
            step_idx = idx
            idx, p = idx[~empty], p[~empty]
        else:
            step_idx = idx
        if idx.size:
            sigma, rgb = radiance_fn(p, d[idx])
            alpha = np.float32(1.0) - np.exp(-sigma * dt).astype(np.float32)
            weight = trans[idx] * alpha
            colour[idx] += weight[:, None] * rgb
            depth[idx] += weight * t[idx]
            trans[idx] *= np.float32(1.0) - alpha
            samples[idx] += 1
        t[step_idx] += advance * dt
    mode = MODES[view.mode]
    if mode == 0:
        out = colour + trans[:, None] * np.asarray(view.background, np.float32)[None, :]
    elif mode == 1:
        out = np.repeat((np.float32(1.0) - np.clip(depth / np.float32(view.depth_far), 0, 1))[:, None], 3, axis=1)
    elif mode == 2:
        out = np.repeat((np.float32(1.0) - trans)[:, None], 3, axis=1)
    else:
        s = np.minimum(samples.astype(np.float32) / np.float32(64.0), np.float32(1.0))
        out = heat_map(s)
    return to_uint8(out).reshape(height, width, 3), samples.reshape(height, width)
