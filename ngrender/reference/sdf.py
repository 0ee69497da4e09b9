"""Neural SDF app: sphere tracing through the unit cube, normals from the network, simple shading.

The loop is the shader's, step for step: one network evaluation per iteration, first the trace
(``t += 0.95 * sdf`` until ``sdf < epsilon``, leaving the box, or ``max_steps``), then at a hit the four
tetrahedron samples of the normal (``n = sum_k e_k * sdf(p + h e_k)``, h = ``normal_h``), then (shaded and ao
modes) ``ao_samples`` occlusion samples along the unit normal: ``occ = sum_i 2^-i (h_i - sdf(p + h_i n))``,
``h_i = i * ao_step``, ``ao = clamp(1 - ao_scale * occ, 0, 1)``, which scales the shaded colour."""
from __future__ import annotations

import numpy as np

from ..apps.views import SDF_MODES as MODES, SdfView
from ..model import Model
from ..shader_interface import SDF_ALBEDO, SDF_AMBIENT, SDF_LIGHT, SDF_STEP_SCALE, SDF_TETRA
from .camera import primary_rays
from .output import heat_map, to_uint8
from .field import Network, field_network

# the shader's constants (generated/constants.glsl), as float32
STEP_SCALE = np.float32(SDF_STEP_SCALE)
TETRA = np.array(SDF_TETRA, dtype=np.float32)
LIGHT = np.array(SDF_LIGHT, dtype=np.float32)  # unit vector, world space
ALBEDO = np.array(SDF_ALBEDO, dtype=np.float32)
AMBIENT = np.float32(SDF_AMBIENT)


def unit_normals(normal: np.ndarray) -> np.ndarray:
    return normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), np.float32(1e-12))


def ambient_occlusion(occlusion: np.ndarray, view: SdfView) -> np.ndarray:
    """ao in [0, 1] from the weighted occlusion sum (1 where no sample was taken: the sum is 0)."""
    return np.clip(np.float32(1.0) - view.ao_scale * occlusion, np.float32(0.0), np.float32(1.0))


def shade_rgb(mode: int, hit: np.ndarray, t: np.ndarray, steps: np.ndarray, normal: np.ndarray, view: SdfView,
              max_steps: int, occlusion: np.ndarray | None = None) -> np.ndarray:
    """Per-ray colour (N, 3) float32 from the trace result, as the shader's shade(); ``occlusion``: the weighted
    occlusion sums (None: no occlusion samples)."""
    n = unit_normals(normal)
    ao = ambient_occlusion(np.zeros(t.size, np.float32) if occlusion is None else occlusion, view)
    rgb = np.broadcast_to(np.asarray(view.background, np.float32), (t.size, 3)).copy()
    if mode == 0:
        lit = AMBIENT + (np.float32(1.0) - AMBIENT) * np.maximum(n @ LIGHT, np.float32(0.0))
        rgb[hit] = (ALBEDO[None, :] * (lit * ao)[:, None])[hit]
    elif mode == 4:
        rgb[hit] = np.repeat(ao[:, None], 3, axis=1)[hit]
    elif mode == 1:
        rgb[hit] = (n * np.float32(0.5) + np.float32(0.5))[hit]
    elif mode == 2:
        depth = np.float32(1.0) - np.clip(t / np.float32(view.depth_far), 0, 1)
        rgb[hit] = np.repeat(depth[:, None], 3, axis=1)[hit]
    else:
        s = (steps.astype(np.float32) / np.float32(max_steps))
        rgb = heat_map(s)
    return rgb.astype(np.float32)


def render(model: Model, width: int, height: int, view: SdfView,
           network: Network | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(image (h, w, 3) uint8, network evaluations per pixel (h, w): trace steps, plus 4 (normal) and the
    view's occlusion samples at a hit)."""
    network = network or field_network(model)
    o, d, t_near, t_far = primary_rays(view.camera, width, height)
    n_rays = o.shape[0]
    t = t_near.copy()
    steps = np.zeros(n_rays, np.int32)
    hit = np.zeros(n_rays, bool)
    normal = np.zeros((n_rays, 3), np.float32)
    eps = np.float32(view.epsilon)
    active = t_near <= t_far
    for _ in range(view.max_steps):
        active &= (steps < view.max_steps) & (t <= t_far)
        idx = np.nonzero(active)[0]
        if idx.size == 0:
            break
        p = o[idx] + t[idx, None] * d[idx]
        s = network(p)[:, 0]
        steps[idx] += 1
        done = s < eps
        hit[idx[done]] = True
        active[idx[done]] = False
        t[idx[~done]] += STEP_SCALE * s[~done]
    hits = np.nonzero(hit)[0]
    if hits.size:
        p_hit = o[hits] + t[hits, None] * d[hits]
        for e in TETRA:
            normal[hits] += e[None, :] * network(p_hit + np.float32(view.normal_h) * e)[:, :1]
    occlusion = np.zeros(n_rays, np.float32)
    if hits.size and view.ao_taken:
        n_hit = unit_normals(normal[hits])
        for i in range(1, view.ao_taken + 1):
            h = np.float32(i) * np.float32(view.ao_step)
            sdf = network(p_hit + h * n_hit)[:, 0]
            occlusion[hits] += np.float32(2.0 ** -i) * (h - sdf)
    rgb = shade_rgb(MODES[view.mode], hit, t, steps, normal, view, view.max_steps, occlusion)
    evaluations = steps + (4 + view.ao_taken) * hit
    return to_uint8(rgb).reshape(height, width, 3), evaluations.reshape(height, width)
