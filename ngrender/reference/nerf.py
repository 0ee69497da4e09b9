"""NeRF app: instant-ngp's rendering of a trained radiance field, per ray.

March through the scene box (the unit cube, or instant-ngp's ``[0.5 - s/2, 0.5 + s/2]^3`` for aabb_scale s) with
step ``dt(t) = clamp(t * cone_angle, sqrt(3) / n_steps, sqrt(3))`` (a fixed step sqrt(3)/1024 by default: cone
angle 0; instant-ngp's 1/256 when the box is larger than the unit cube); in an empty occupancy-grid cell, jump
past the cell's exit without evaluating the network (by whole fixed steps, or step by step while the steps
grow); the cell is looked up in the cascade instant-ngp picks (the finest one holding the sample, coarser when
the step is large: ``mip_from_dt``); at each sample in an occupied cell: position (the box mapped to [0,1]^3) ->
hash grid -> density MLP (16 outputs, density = exp(out[0])); [out, SH degree-4 of the view direction] ->
colour MLP -> RGB (sigmoid); front-to-back alpha compositing, stopping when transmittance < min_transmittance;
background behind."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..apps.views import DEFAULT_CONE_ANGLE, NERF_MODES as MODES, NerfView, cone_angle  # noqa: F401 (train/nerf.py)
from ..model import Model
from ..shader_interface import SH_COEFFICIENTS
from .camera import camera_rays, unit_box_hits
from .output import heat_map, to_uint8
from .grid import encode_grid
from .mlp import mlp_forward

MAX_CONE_DT = np.float32(np.sqrt(3.0))  # instant-ngp's largest cone step (its sqrt(3)/1024 * 2^7 * 1024/128)


def step_size(t: np.ndarray, cone: np.float32, dt_min: np.float32) -> np.ndarray:
    """dt(t) = clamp(t * cone_angle, dt_min, sqrt(3)) in float32 (the shader's calc_dt)."""
    return np.minimum(np.maximum((t * cone).astype(np.float32), dt_min), MAX_CONE_DT).astype(np.float32)


def scene_box(model: Model) -> tuple[np.float32, np.float32]:
    """(lo, hi) of the box on every axis: [0.5 - s/2, 0.5 + s/2]."""
    half = np.float32(0.5 * model.aabb_scale)
    return np.float32(0.5) - half, np.float32(0.5) + half


def cascade_of(p: np.ndarray, dt: np.ndarray, max_cascade: int, res: int) -> np.ndarray:
    """instant-ngp's mip_from_dt: the finest cascade holding p (frexp of max |p - 0.5|), raised to the step's
    scale when dt * 2 * res >= 1, at most max_cascade."""
    exponent = np.frexp(np.abs(p - np.float32(0.5)).max(axis=1))[1]
    mip = np.clip(exponent + 1, 0, max_cascade)
    scaled = (dt * np.float32(2 * res)).astype(np.float32)
    big = scaled >= np.float32(1.0)
    return np.where(big, np.minimum(np.maximum(mip, np.frexp(scaled)[1]), max_cascade), mip)


def to_cascade(p: np.ndarray, mip: np.ndarray) -> np.ndarray:
    """p in cascade mip's unit cube, (p - 0.5) * 2^-mip + 0.5 (p itself in cascade 0)."""
    scale = np.ldexp(np.float32(1.0), -mip).astype(np.float32)[:, None]
    q = ((p - np.float32(0.5)) * scale + np.float32(0.5)).astype(np.float32)
    return np.where((mip == 0)[:, None], p, q)


def from_cascade(q: np.ndarray, mip: np.ndarray) -> np.ndarray:
    """The inverse of to_cascade."""
    scale = np.ldexp(np.float32(1.0), mip).astype(np.float32)[:, None]
    p = ((q - np.float32(0.5)) * scale + np.float32(0.5)).astype(np.float32)
    return np.where((mip == 0)[:, None], q, p)


def sh_encode(d: np.ndarray, degree: int = 4) -> np.ndarray:
    """Real spherical harmonics of unit directions (N, 3), tcnn's SphericalHarmonics (degree**2 values)."""
    x, y, z = (d[:, i].astype(np.float32) for i in range(3))
    xy, xz, yz, x2, y2, z2 = x * y, x * z, y * z, x * x, y * y, z * z
    f = np.float32
    c = {name: f(value) for name, value in SH_COEFFICIENTS.items()}  # sh.glsl's constants
    out = [np.full_like(x, c["SH_C0"])]
    if degree > 1:
        out += [-c["SH_C1"] * y, c["SH_C1"] * z, -c["SH_C1"] * x]
    if degree > 2:
        out += [c["SH_C2_XY"] * xy, -c["SH_C2_XY"] * yz, c["SH_C2_ZZ"] * z2 - c["SH_C2_0"], -c["SH_C2_XY"] * xz,
                c["SH_C2_XX"] * x2 - c["SH_C2_XX"] * y2]
    if degree > 3:
        out += [c["SH_C3_A"] * y * (f(-3.0) * x2 + y2), c["SH_C3_B"] * xy * z,
                c["SH_C3_C"] * y * (f(1.0) - f(5.0) * z2), c["SH_C3_D"] * z * (f(5.0) * z2 - f(3.0)),
                c["SH_C3_C"] * x * (f(1.0) - f(5.0) * z2), c["SH_C3_E"] * z * (x2 - y2),
                c["SH_C3_A"] * x * (-x2 + f(3.0) * y2)]
    return np.stack(out, axis=1).astype(np.float32)


def occupancy_cells(p: np.ndarray, res: int) -> np.ndarray:
    """Integer occupancy cell (N, 3) holding p (clamped to the cube)."""
    return np.minimum((np.clip(p, 0.0, 1.0) * np.float32(res)).astype(np.int32), res - 1)


def cell_exit(cell: np.ndarray, p: np.ndarray, d: np.ndarray, t: np.ndarray, res: int,
              mip: np.ndarray | None = None) -> np.ndarray:
    """The t at which the ray leaves the cell (of cascade ``mip``; cascade 0 by default)."""
    bound = (cell.astype(np.float32) + (d >= 0).astype(np.float32)) / np.float32(res)
    if mip is not None:
        bound = from_cascade(bound, mip)
    with np.errstate(divide="ignore", invalid="ignore"):
        tt = np.where(d != 0, (bound - p) / d, np.float32(1e30)).astype(np.float32)
    return t + tt.min(axis=1)


def steps_to_leave(cell: np.ndarray, p: np.ndarray, d: np.ndarray, t: np.ndarray, dt: np.float32,
                   res: int, mip: np.ndarray | None = None) -> np.ndarray:
    """Whole steps of dt (at least one) that take t past the exit of the cell (the shader's steps_to_leave)."""
    t_exit = cell_exit(cell, p, d, t, res, mip)
    return np.maximum(np.float32(1.0), np.ceil((t_exit - t) / dt)).astype(np.float32)


def cone_steps_past(t: np.ndarray, t_exit: np.ndarray, cone: np.float32, dt_min: np.float32) -> np.ndarray:
    """t advanced by dt(t), one step at a time, until it is past t_exit (at least one step)."""
    t = t.copy()
    going = np.ones(t.shape, bool)
    while going.any():
        t[going] = t[going] + step_size(t[going], cone, dt_min)
        going &= t < t_exit
    return t


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
    o, d = camera_rays(view.camera, width, height)
    lo, hi = scene_box(model)
    t_near, t_far = unit_box_hits(o, d, lo, hi)
    n = o.shape[0]
    dt_min, cone = view.dt, cone_angle(view, model)
    cascades = model.occupancy_cascades
    occ = model.occupancy.ravel() if (view.use_occupancy and model.occupancy is not None) else None
    res = model.occupancy_side if occ is not None else 0
    t = (t_near + np.float32(0.5) * dt_min).astype(np.float32)
    trans = np.ones(n, np.float32)
    colour = np.zeros((n, 3), np.float32)
    depth = np.zeros(n, np.float32)
    samples = np.zeros(n, np.int32)
    active = t_near <= t_far
    min_t = np.float32(view.min_transmittance)
    while True:  # each pass: every live ray takes one sample or skips one empty cell
        active &= (t <= t_far) & (trans >= min_t) & (samples < view.n_steps + 1)
        idx = np.nonzero(active)[0]
        if idx.size == 0:
            break
        p = o[idx] + t[idx, None] * d[idx]
        dt = step_size(t[idx], cone, dt_min)
        next_t = t[idx] + dt
        if occ is not None:
            mip = cascade_of(p, dt, cascades - 1, res) if cascades > 1 else np.zeros(idx.size, np.int64)
            cells = occupancy_cells(to_cascade(p, mip) if cascades > 1 else p, res)
            empty = occ[mip * res ** 3 + cells[:, 0] + res * (cells[:, 1] + res * cells[:, 2])] == 0
            e = np.nonzero(empty)[0]
            mips = mip[e] if cascades > 1 else None
            if cone == 0:
                next_t[e] = t[idx[e]] + steps_to_leave(cells[e], p[e], d[idx[e]], t[idx[e]], dt_min, res, mips) * dt_min
            else:
                next_t[e] = cone_steps_past(t[idx[e]], cell_exit(cells[e], p[e], d[idx[e]], t[idx[e]], res, mips),
                                            cone, dt_min)
            keep = ~empty
        else:
            keep = np.ones(idx.size, bool)
        step_idx = idx
        idx, p, dt = idx[keep], p[keep], dt[keep]
        if idx.size:
            x = p if model.aabb_scale == 1 else ((p - lo) / np.float32(model.aabb_scale)).astype(np.float32)
            sigma, rgb = radiance_fn(x, d[idx])
            alpha = np.float32(1.0) - np.exp(-sigma * dt).astype(np.float32)
            weight = trans[idx] * alpha
            colour[idx] += weight[:, None] * rgb
            depth[idx] += weight * t[idx]
            trans[idx] *= np.float32(1.0) - alpha
            samples[idx] += 1
        t[step_idx] = next_t
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
