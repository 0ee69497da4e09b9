"""Fit instant-ngp's NeRF (hash grid + density MLP, SH degree 4 + colour MLP) to a transforms.json data set.

Sampling is instant-ngp's: rays march through the unit cube with the fine step dt = sqrt(3)/n_steps from a
per-ray random offset, and only samples in occupied cells of a 128^3 occupancy grid are evaluated. The grid holds
an exponential moving average of the optical thickness sigma*dt (decay 0.95, updated every 16 steps at random
points in half uniformly chosen and half occupied cells); a cell is occupied when its value exceeds
min(0.01, mean). The first 64 steps (instant-ngp: 256) treat every cell as occupied; at their end and at the end
of training every cell is evaluated. The bit field is saved with the model and the renderer skips the cells it
marks empty.

One departure, for the CPU's sake: a sample is only trained where some training ray recently reached the cell
with transmittance above 1e-3 (the interior of an opaque object is skipped; the renderer stops at 0.01
anyway). The transmittance is measured at every occupied-cell sample of every ray, evaluated or not, so a cell
that comes into view is trained again. Rays composite onto a random background colour (transparent pixels teach
zero density); loss L2. Quality: PSNR of the held-out test views rendered by the reference renderer with the
trained (storage-precision) weights on a white background, against the test images composited on white."""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.transforms import NerfSplit, load_split, pixel_rays
from ..encoding import grid_geometry
from ..errors import ConfigError
from ..reference.camera import unit_box_hits
from ..model import Model, NetworkConfig, load_network_config
from ..netconfig import NERF_SDF_FINEST, sh_degree, with_per_level_scale
from . import loop
from .loop import FitResult, psnr_db

# instant-ngp's configs/nerf/base.json parts that a config may leave out
DIR_ENCODING = {"otype": "SphericalHarmonics", "degree": 4}
RGB_NETWORK = {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "Sigmoid", "n_neurons": 64,
               "n_hidden_layers": 2}
OCC_RES, OCC_DECAY, OCC_UPDATE_EVERY, OCC_WARMUP = 128, 0.95, 16, 64
MIN_OPTICAL_THICKNESS = 0.01
VISIBLE_TRANSMITTANCE = 1e-3
MAX_LOG_DENSITY = 15.0  # exp() clamp in training only: sigma*dt is far past opaque there, and exp stays finite


class OccupancyGrid(nn.Module):
    """The occupancy grid's state as torch buffers (so checkpoints and resume carry it)."""

    def __init__(self, res: int = OCC_RES) -> None:
        super().__init__()
        self.res = res
        n = res ** 3
        self.register_buffer("density", torch.zeros(n))        # EMA of sigma*dt per cell
        self.register_buffer("visible", torch.ones(n))         # EMA of the largest transmittance seen
        self.register_buffer("seen", torch.zeros(n))           # largest transmittance since the last update
        self.register_buffer("occupied", torch.ones(n, dtype=torch.bool))

    def cells(self, p: torch.Tensor) -> torch.Tensor:
        """Flat cell index x + res*(y + res*z) (reference.nerf.occupancy_cells, clamped to the cube)."""
        c = torch.clamp((torch.clamp(p, 0.0, 1.0) * self.res).to(torch.int64), max=self.res - 1)
        return c[..., 0] + self.res * (c[..., 1] + self.res * c[..., 2])

    def points(self, cells: torch.Tensor, jitter: torch.Tensor) -> torch.Tensor:
        xyz = torch.stack([cells % self.res, (cells // self.res) % self.res, cells // self.res ** 2], dim=1)
        return (xyz.to(torch.float32) + jitter) / self.res

    def update(self, optical_thickness, cells: torch.Tensor, jitter: torch.Tensor, warm: bool) -> None:
        """Decay, then max with sigma*dt at the given cells; recompute the bit field."""
        new = torch.cat([optical_thickness(self.points(chunk, j))
                         for chunk, j in zip(cells.split(1 << 16), jitter.split(1 << 16))])
        self.density.mul_(OCC_DECAY).scatter_reduce_(0, cells, new, "amax")
        self.visible.mul_(OCC_DECAY)
        torch.maximum(self.visible, self.seen, out=self.visible)
        self.seen.zero_()
        if warm:
            threshold = min(MIN_OPTICAL_THICKNESS, float(self.density.mean()))
            self.occupied.copy_(self.density > threshold)

    def cube(self) -> np.ndarray:
        """(res, res, res) uint8 [z, y, x], the model's ``occupancy`` tensor."""
        return self.occupied.to(torch.uint8).reshape(self.res, self.res, self.res).cpu().numpy().copy()


def segment_exclusive_sum(values, ray, n_rays: int):
    """Per sample, the sum of the earlier samples' values on the same ray (samples sorted by ray), and the
    per-ray totals; float64 so the global running sum keeps the per-ray differences exact enough."""
    total = torch.cumsum(values.double(), 0)
    before = total - values.double()
    counts = torch.bincount(ray, minlength=n_rays)
    starts = torch.cumsum(counts, 0) - counts
    base = before[torch.clamp(starts, max=max(values.shape[0] - 1, 0))] if values.shape[0] else before
    excl = (before - base[ray]).to(values.dtype)
    ray_total = torch.zeros(n_rays, dtype=values.dtype, device=values.device).index_add_(0, ray, values)
    return excl, ray_total


def load_nerf_config(path: str | Path) -> dict:
    """An instant-ngp NeRF config (base.json schema); dir_encoding and rgb_network default to instant-ngp's."""
    config = dict(load_network_config(path))
    config.setdefault("dir_encoding", DIR_ENCODING)
    config.setdefault("rgb_network", RGB_NETWORK)
    try:
        sh_degree(config["dir_encoding"])  # SphericalHarmonics, or instant-ngp's Composite (SH + Identity)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config


def evaluate(model: Model, split: NerfSplit, n_steps: int, max_views: int | None = None, device="cpu") -> dict:
    """PSNR of the model's renders (reference renderer, PyTorch networks on ``device``, white background) against
    the split's images composited on white."""
    from ..camera import Camera
    from ..reference import nerf as ref
    from .torch_field import torch_radiance

    width, height = split.size
    if abs(split.centre[0] - width / 2) > 1e-3 or abs(split.centre[1] - height / 2) > 1e-3 or \
            abs(split.focal[0] - split.focal[1]) > 1e-3 * split.focal[0]:
        return {"psnr_db": None, "note": "not evaluated: the renderer's camera has square pixels and a centred "
                                         "principal point, these test views do not"}
    radiance = torch_radiance(model, device)
    psnrs = []
    for k in range(min(len(split.c2w), max_views or len(split.c2w))):
        view = ref.NerfView(camera=Camera(split.c2w[k], split.fov_x_deg), n_steps=n_steps, background=(1, 1, 1))
        got = ref.render(model, width, height, view, radiance)[0].astype(np.float64) / 255.0
        rgba = split.rgba[k].astype(np.float64)
        want = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])
        psnrs.append(psnr_db(float(np.mean((got - want) ** 2))))
    return {"psnr_db": float(np.mean(psnrs)), "psnr_min_db": float(np.min(psnrs)), "test_views": len(psnrs),
            "eval_size": [width, height]}


def train(data: str | Path, encoding: str = "hash", config_path: str | Path | None = None, steps: int = 20000,
          time_budget: float | None = None, batch: int = 1 << 15, lr: float = 1e-2, seed: int = 0,
          n_steps: int = 1024, checkpoint: Path | None = None, resume: Path | None = None, progress: bool = True,
          dtype: str = "float16", eval_views: int | None = None, device="cpu") -> FitResult:
    """``batch`` is the target number of network samples per step; the rays per step adapt to it.

    ``device``: cpu, cuda or cuda:N. The network, the occupancy grid and the ray marching live there; the
    training images stay on the CPU, where the rays and their random numbers are drawn (the NumPy generator,
    so every device sees the same samples), and each step's rays and targets are moved to the device."""
    from .torch_field import TorchNerf

    device = loop.resolve_device(device)
    config = with_per_level_scale(load_nerf_config(loop.config_file("nerf", encoding, config_path)), NERF_SDF_FINEST)
    train_split = load_split(data, "train")
    test_split = load_split(data, "test")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    start = time.perf_counter()
    nerf = TorchNerf(grid_geometry(config["encoding"], 3), NetworkConfig.from_json(config["network"]),
                     NetworkConfig.from_json(config["rgb_network"]), 16, sh_degree(config["dir_encoding"]))
    grid = OccupancyGrid()
    trainee = torch.nn.ModuleDict({"nerf": nerf, "occupancy": grid})
    trainee.register_buffer("progress", torch.tensor([0, 1024], dtype=torch.int64))  # (step, rays per step)
    trainee.to(device)
    optimizer = loop.adam_groups(nerf.density.grid.parameters(),
                                 [*nerf.density.layers.parameters(), *nerf.rgb_layers.parameters()], lr)
    dt = float(np.float32(math.sqrt(3.0) / n_steps))
    views, height, width = train_split.rgba.shape[:3]
    rgba = torch.from_numpy(train_split.rgba.reshape(-1, 4))
    offsets = torch.arange(n_steps + 1, dtype=torch.float32, device=device)

    def optical_thickness(p: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            h = nerf.density(p)[:, 0]
        return torch.exp(torch.clamp(h, max=MAX_LOG_DENSITY)) * dt

    def update_grid(step: int, everything: bool) -> None:
        n = grid.res ** 3
        if everything:
            cells = torch.arange(n, device=device)
        else:
            k = 1 << 16
            occupied = torch.nonzero(grid.occupied).flatten()
            cells = torch.from_numpy(rng.integers(0, n, k)).to(device)
            if occupied.numel():
                pick = torch.from_numpy(rng.integers(0, occupied.numel(), k)).to(device)
                cells = torch.cat([cells, occupied[pick]])
        jitter = torch.from_numpy(rng.random((cells.numel(), 3), np.float32)).to(device)
        grid.update(optical_thickness, cells, jitter, warm=step >= OCC_WARMUP)

    def sample_rays(n_rays: int):
        view = rng.integers(0, views, n_rays)
        px, py = rng.integers(0, width, n_rays), rng.integers(0, height, n_rays)
        o, d = pixel_rays(train_split, view, px + rng.random(n_rays), py + rng.random(n_rays))
        t_near, t_far = unit_box_hits(o, d)
        target = rgba[torch.from_numpy((view * height + py) * width + px)]
        return tuple(torch.from_numpy(a).to(device) for a in (o, d, t_near, t_far)) + (target.to(device),)

    def step() -> float:
        step_index, n_rays = (int(v) for v in trainee.progress)
        if step_index % OCC_UPDATE_EVERY == 0 or step_index == OCC_WARMUP:
            update_grid(step_index, everything=step_index == OCC_WARMUP)
        o, d, t_near, t_far, target = sample_rays(n_rays)
        # Every lattice point t_near + (k + u) dt inside the cube, kept where its cell is occupied
        u = torch.from_numpy(rng.random(n_rays, np.float32)).to(device)
        t = t_near[:, None] + (offsets[None, :] + u[:, None]) * dt
        with torch.no_grad():
            cells = grid.cells(o[:, None, :] + t[..., None] * d[:, None, :])
            keep = (t <= t_far[:, None]) & grid.occupied[cells]
            ray_c, k_c = torch.nonzero(keep, as_tuple=True)          # candidates, sorted by ray then t
            cells_c = cells[ray_c, k_c]
            trained = (grid.visible[cells_c] > VISIBLE_TRANSMITTANCE) if step_index >= OCC_WARMUP else \
                torch.ones_like(cells_c, dtype=torch.bool)
        ray_s = ray_c[trained]
        t_s = t[ray_c[trained], k_c[trained]]
        p = o[ray_s] + t_s[:, None] * d[ray_s]
        sigma, rgb = nerf(p, d[ray_s], max_log_density=MAX_LOG_DENSITY)
        sdt = sigma * dt
        excl, total = segment_exclusive_sum(sdt, ray_s, n_rays)
        weight = torch.exp(-excl) * (1.0 - torch.exp(-sdt))
        colour = torch.zeros(n_rays, 3, device=device).index_add_(0, ray_s, weight[:, None] * rgb)
        background = torch.from_numpy(rng.random((n_rays, 3), np.float32)).to(device)
        predicted = colour + torch.exp(-total)[:, None] * background
        wanted = target[:, :3] * target[:, 3:] + background * (1.0 - target[:, 3:])
        loss = torch.mean((predicted - wanted) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # transmittance at every candidate, evaluated or skipped, for the visibility EMA
            sdt_c = torch.zeros(ray_c.numel(), device=device)
            sdt_c[trained] = sdt.detach()
            grid.seen.scatter_reduce_(0, cells_c, torch.exp(-segment_exclusive_sum(sdt_c, ray_c, n_rays)[0]), "amax")
            per_ray = max(ray_s.numel(), 1) / n_rays
            trainee.progress.copy_(torch.tensor([step_index + 1, int(np.clip(batch / per_ray, 256, 1 << 16))]))
        return float(loss.detach()), int(ray_s.numel())

    meta = {"trainer": "nerf", "data": str(Path(data).resolve().name), "config": config, "batch": batch,
            "seed": seed, "n_steps": n_steps}
    state = loop.run(step, steps, batch, trainee, optimizer, rng, meta, time_budget, checkpoint, resume=resume,
                     progress=progress, device=device)
    update_grid(int(trainee.progress[0]), everything=True)  # the saved grid: every cell evaluated at the end
    seconds = time.perf_counter() - start
    model = nerf.to_model(config, grid.cube(), dtype)
    metrics = evaluate(model, test_split, n_steps, eval_views, device)
    label = loop.device_label(device)
    model.extra = {"source": str(data), "train_views": int(views), "train_size": [int(width), int(height)],
                   "n_steps": n_steps, "occupancy_fraction": round(float(grid.occupied.float().mean()), 4),
                   "train_steps": state.step, "train_seconds": round(state.elapsed, 1), "train_device": label,
                   "batch": batch, **metrics}
    return FitResult(model, state.step, seconds, metrics, state.losses, label)
