"""Fit a neural SDF (3D grid encoding + MLP -> signed distance) to a real scanned mesh.

The mesh is scaled into the unit cube (centred, longest side 0.8). Training samples are drawn from a pool of
points with their exact signed distance from libigl (distance to the nearest triangle, sign from the fast
winding number, robust on scans): 40% surface points moved by N(0, 0.005^2), 40% by N(0, 0.03^2), 20% uniform
in the cube, as instant-ngp's SDF training mixes near-surface and uniform samples. Loss: instant-ngp's MAPE,
|pred - sdf| / (|sdf| + 0.01), which weights the surface where sphere tracing needs accuracy."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..data.mesh import fit_unit_cube, load_mesh, resolve_mesh
from ..encoding import grid_geometry
from ..model import NetworkConfig, load_network_config
from ..netconfig import NERF_SDF_FINEST, with_per_level_scale
from . import loop
from .loop import FitResult

MAPE_EPS = 0.01


def signed_distance(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Exact distance to the mesh, negative inside (sign from the fast winding number)."""
    import igl

    kind = igl.SignedDistanceType.SIGNED_DISTANCE_TYPE_FAST_WINDING_NUMBER
    return igl.signed_distance(np.ascontiguousarray(points, np.float64), vertices, faces, sign_type=kind)[0]


def surface_points(vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform samples on the surface (area-weighted triangles, uniform barycentrics)."""
    tri = vertices[faces]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    pick = rng.choice(len(faces), n, p=area / area.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    t = tri[pick]
    return t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])


def sample_pool(vertices: np.ndarray, faces: np.ndarray, n: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(points float32 (n, 3), signed distance float32 (n,)) of the training mix."""
    n_near = int(n * 0.4)
    near = surface_points(vertices, faces, n_near, rng) + rng.normal(0, 0.005, (n_near, 3))
    mid = surface_points(vertices, faces, n_near, rng) + rng.normal(0, 0.03, (n_near, 3))
    uniform = rng.random((n - 2 * n_near, 3))
    points = np.clip(np.concatenate([near, mid, uniform]), 0.0, 1.0)
    return points.astype(np.float32), signed_distance(points, vertices, faces).astype(np.float32)


def evaluate(field, vertices: np.ndarray, faces: np.ndarray, rng: np.random.Generator, n: int = 100_000,
             device="cpu") -> dict:
    """Surface error: mean and 90th percentile |sdf| at surface samples (cube units and % of the bounding-box
    diagonal); sign accuracy on held-out near-surface and uniform points away from the surface (|sdf| > 1e-3).
    The points are drawn on the CPU, the field runs on ``device`` (it is moved there)."""
    import torch

    field = field.to(device)
    surface = surface_points(vertices, faces, n, rng).astype(np.float32)
    test_points, test_sdf = sample_pool(vertices, faces, n, rng)
    with torch.no_grad():
        at_surface = np.abs(field(torch.from_numpy(surface).to(device)).cpu().numpy()[:, 0])
        pred = field(torch.from_numpy(test_points).to(device)).cpu().numpy()[:, 0]
    away = np.abs(test_sdf) > 1e-3
    diagonal = float(np.linalg.norm(vertices.max(0) - vertices.min(0)))
    return {"surface_error_mean": float(at_surface.mean()),
            "surface_error_p90": float(np.percentile(at_surface, 90)),
            "surface_error_pct_diagonal": float(100 * at_surface.mean() / diagonal),
            "sign_accuracy": float((np.sign(pred[away]) == np.sign(test_sdf[away])).mean())}


def describe(metrics: dict) -> str:
    """The quality figures in words."""
    m = metrics
    return (f"surface error {m['surface_error_mean']:.5f} mean ({m['surface_error_pct_diagonal']:.3f}% of "
            f"the diagonal), p90 {m['surface_error_p90']:.5f}; sign accuracy {100 * m['sign_accuracy']:.2f}%")


def train(mesh: str | Path, preset: str = "hash", config_path: str | Path | None = None, steps: int = 4000,
          time_budget: float | None = None, batch: int = 1 << 14, lr: float = 1e-2, seed: int = 0,
          pool: int = 1 << 20, checkpoint: Path | None = None, resume: Path | None = None, progress: bool = True,
          dtype: str = "float16", device="cpu") -> FitResult:
    """``device``: cpu, cuda or cuda:N. The pool of points is made on the CPU (libigl) and then kept on the
    device (16 MB at the default 2^20 points); each step's indices are drawn on the CPU and moved."""
    import torch

    from .torch_field import TorchField

    device = loop.resolve_device(device)
    path = resolve_mesh(str(mesh))
    config = with_per_level_scale(load_network_config(loop.config_file("sdf", preset, config_path)),
                                  NERF_SDF_FINEST)
    raw_vertices, faces = load_mesh(path)
    vertices, scale, offset = fit_unit_cube(raw_vertices)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    start = time.perf_counter()
    points, sdf = sample_pool(vertices, faces, pool, rng)
    field = TorchField(grid_geometry(config["encoding"], 3), NetworkConfig.from_json(config["network"]), 1).to(device)
    optimizer = loop.adam(field, lr)
    points_t, sdf_t = torch.from_numpy(points).to(device), torch.from_numpy(sdf).to(device)

    def step() -> float:
        idx = torch.from_numpy(rng.integers(0, pool, batch)).to(device)
        target = sdf_t[idx]
        loss = torch.mean(torch.abs(field(points_t[idx])[:, 0] - target) / (target.abs() + MAPE_EPS))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    meta = {"trainer": "sdf", "mesh": path.name, "config": config, "batch": batch, "pool": pool, "seed": seed}
    state = loop.run(step, steps, batch, field, optimizer, rng, meta, time_budget, checkpoint, resume=resume,
                     progress=progress, device=device)
    seconds = time.perf_counter() - start
    model = field.to_model("sdf", config, dtype)
    metrics = evaluate(TorchField.from_model(model), vertices, faces, np.random.default_rng(seed + 1), device=device)
    label = loop.device_label(device)
    model.extra = {"source": path.name, "triangles": int(len(faces)), "mesh_scale": scale,
                   "mesh_offset": [float(v) for v in offset], "train_steps": state.step,
                   "train_seconds": round(state.elapsed, 1), "train_device": label, "batch": batch,
                   **{k: round(v, 6) for k, v in metrics.items()}}
    return FitResult(model, state.step, seconds, metrics, state.losses, label)
