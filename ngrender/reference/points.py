"""The field at points (the mesh kernel's golden model, shaders/mesh/points.comp): each app's own reference
networks, evaluated at given positions instead of along rays.

Values: SDF the distance; NeRF the density network's raw out[0] (log density), -10000 in an empty occupancy cell
(instant-ngp's marching cubes does the same); volume the density out[3]. Colours: NeRF the colour network looking
along the given directions; volume out[0:3]; SDF zero."""
from __future__ import annotations

import numpy as np

from ..model import Model
from .field import field_network
from .grid import encode_grid
from .mlp import mlp_forward
from .nerf import cascade_of, occupancy_cells, scene_box, sh_encode, to_cascade

EMPTY_CELL = np.float32(-10000.0)


def grid_points(origin, spacing: float, shape: tuple[int, int, int], first: int, count: int) -> np.ndarray:
    """Grid points ``first .. first + count - 1`` (x fastest) as the kernel computes them in float32."""
    nx, ny = shape[0], shape[1]
    k = np.arange(first, first + count, dtype=np.int64)
    index = np.stack([k % nx, (k // nx) % ny, k // (nx * ny)], axis=1).astype(np.float32)
    return (np.float32(spacing) * index + np.asarray(origin, np.float32)).astype(np.float32)


def occupied(model: Model, p: np.ndarray) -> np.ndarray:
    """Whether each position's occupancy cell (in the finest cascade holding it: mip_from_pos) is occupied."""
    res = model.occupancy_side
    mip = cascade_of(p, np.zeros(p.shape[0], np.float32), model.occupancy_cascades - 1, res)
    cells = occupancy_cells(to_cascade(p, mip), res)
    return model.occupancy.ravel()[mip * res ** 3 + cells[:, 0] + res * (cells[:, 1] + res * cells[:, 2])] != 0


def field_at(model: Model, p: np.ndarray, d: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(values (N,), rgb (N, 3)) float32 at world positions p (N, 3); d (N, 3): NeRF's view directions."""
    p = np.asarray(p, np.float32)
    rgb = np.zeros((p.shape[0], 3), np.float32)
    if model.app != "nerf":
        out = field_network(model)(p)
        if model.app == "sdf":
            return out[:, 0].copy(), rgb
        return out[:, 3].copy(), out[:, :3].copy()
    lo, _ = scene_box(model)
    x = p if model.aabb_scale == 1 else ((p - lo) / np.float32(model.aabb_scale)).astype(np.float32)
    h = mlp_forward(model.layers, encode_grid(model.geometry, model.grid, np.clip(x, 0.0, 1.0)),
                    model.net.output_activation)
    values = np.where(occupied(model, p), h[:, 0], EMPTY_CELL).astype(np.float32)
    if d is not None:
        rgb_in = np.concatenate([h, sh_encode(np.asarray(d, np.float32), model.sh_degree)], axis=1)
        rgb = mlp_forward(model.rgb_layers, rgb_in, model.rgb_net.output_activation)
    return values, rgb
