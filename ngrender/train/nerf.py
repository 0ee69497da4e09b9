"""Fit instant-ngp's NeRF (hash grid + density MLP, SH degree 4 + colour MLP) to a transforms.json data set.

Sampling is instant-ngp's: rays march through the unit cube with the fine step dt = sqrt(3)/n_steps from a
per-ray random offset, and only samples in occupied cells of a 128^3 occupancy grid are evaluated. The grid holds
an exponential moving average of the optical thickness sigma*dt (decay 0.95, updated every 16 steps at random
points in half uniformly chosen and half occupied cells); a cell is occupied when its value exceeds
min(0.01, mean). The first 64 steps (instant-ngp: 256) treat every cell as occupied; at their end and at the end
of training every cell is evaluated. The bit field is saved with the model and the renderer skips the cells it
marks empty.

With ``aabb_scale`` s > 1 the scene box is instant-ngp's [0.5 - s/2, 0.5 + s/2]^3 (the network sees it as
[0,1]^3, finest grid resolution 2048 s), the occupancy grid has instant-ngp's ceil(log2 s) + 1 cascades (cascade
c covers 2^c times the unit cube; a sample's cascade as the renderer picks it, reference.nerf.cascade_of; the
threshold from cascade 0's mean; each cascade ORs the finer one's cells into its central half, as instant-ngp's
bit field), and samples are cone-stepped as the renderer marches: t_{k+1} = t_k + clamp(t_k / 256, dt, sqrt(3)).

One departure, for the CPU's sake: a sample is only trained where some training ray recently reached the cell
with transmittance above 1e-3 (the interior of an opaque object is skipped; the renderer stops at 0.01
anyway). The transmittance is measured at every occupied-cell sample of every ray, evaluated or not, so a cell
that comes into view is trained again. Rays composite onto a random background colour (transparent pixels teach
zero density); loss L2, plus ``density_penalty`` times each ray's summed optical thickness sum(sigma*dt) over its
trained samples (an L1 penalty on the sampled densities, against floaters). Quality: PSNR of the held-out test
views rendered by the reference renderer with the trained (storage-precision) weights on a white background,
against the test images composited on white; and the floater measure: the rendered opacity at the test pixels
whose image is transparent (alpha 0), its mean and the fraction of those pixels above FLOATER_OPACITY."""
from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.transforms import NerfSplit, load_split, pixel_rays
from ..encoding import grid_geometry
from ..errors import ConfigError
from ..reference.camera import unit_box_hits
from ..reference.nerf import DEFAULT_CONE_ANGLE, MAX_CONE_DT
from ..model import MAX_AABB_SCALE, Model, NetworkConfig, cascades_of, load_network_config
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
FLOATER_OPACITY = 0.05  # a background pixel rendered more opaque than this counts as covered by a floater
DENSITY_PENALTY = 0.0  # the default --density-penalty (docs/data.md: the measured comparison)
BACKGROUNDS = ("random", "white")


class OccupancyGrid(nn.Module):
    """The occupancy grid's state as torch buffers (so checkpoints and resume carry it): ``cascades`` cubes of
    ``res``^3 cells, cascade-major."""

    def __init__(self, res: int = OCC_RES, cascades: int = 1) -> None:
        super().__init__()
        self.res, self.cascades = res, cascades
        n = cascades * res ** 3
        self.register_buffer("density", torch.zeros(n))        # EMA of sigma*dt per cell
        self.register_buffer("visible", torch.ones(n))         # EMA of the largest transmittance seen
        self.register_buffer("seen", torch.zeros(n))           # largest transmittance since the last update
        self.register_buffer("occupied", torch.ones(n, dtype=torch.bool))

    @property
    def n_cells(self) -> int:
        return self.cascades * self.res ** 3

    def cells(self, p: torch.Tensor, dt: torch.Tensor | None = None) -> torch.Tensor:
        """Flat cell index c*res^3 + x + res*(y + res*z) of positions p (scene coordinates), c the cascade the
        renderer looks them up in for steps dt (reference.nerf.cascade_of; cascade 0 when there is one)."""
        if self.cascades > 1:
            a = torch.abs(p - 0.5).amax(dim=-1)
            mip = torch.clamp(torch.frexp(a).exponent + 1, 0, self.cascades - 1)
            scaled = dt * (2 * self.res)
            mip = torch.where(scaled >= 1.0, torch.clamp(torch.maximum(mip, torch.frexp(scaled).exponent),
                                                         max=self.cascades - 1), mip)
            p = torch.where((mip == 0)[..., None], p, (p - 0.5) * torch.exp2(-mip.to(p.dtype))[..., None] + 0.5)
        c = torch.clamp((torch.clamp(p, 0.0, 1.0) * self.res).to(torch.int64), max=self.res - 1)
        flat = c[..., 0] + self.res * (c[..., 1] + self.res * c[..., 2])
        return flat if self.cascades == 1 else flat + mip.to(torch.int64) * self.res ** 3

    def points(self, cells: torch.Tensor, jitter: torch.Tensor) -> torch.Tensor:
        """Scene positions of the cells, at ``jitter`` (in [0,1)^3) inside each."""
        r3 = self.res ** 3
        mip, local = cells // r3, cells % r3
        xyz = torch.stack([local % self.res, (local // self.res) % self.res, local // self.res ** 2], dim=1)
        q = (xyz.to(torch.float32) + jitter) / self.res
        if self.cascades == 1:
            return q
        return torch.where((mip == 0)[:, None], q, (q - 0.5) * torch.exp2(mip.to(torch.float32))[:, None] + 0.5)

    def update(self, optical_thickness, cells: torch.Tensor, jitter: torch.Tensor, warm: bool) -> None:
        """Decay, then max with sigma*dt at the given cells; recompute the bit field."""
        new = torch.cat([optical_thickness(self.points(chunk, j))
                         for chunk, j in zip(cells.split(1 << 16), jitter.split(1 << 16))])
        self.density.mul_(OCC_DECAY).scatter_reduce_(0, cells, new, "amax")
        self.visible.mul_(OCC_DECAY)
        torch.maximum(self.visible, self.seen, out=self.visible)
        self.seen.zero_()
        if warm:
            threshold = min(MIN_OPTICAL_THICKNESS, float(self.density[:self.res ** 3].mean()))
            bits = (self.density > threshold).reshape(self.cascades, self.res, self.res, self.res)
            half, quarter = self.res // 2, self.res // 4
            for c in range(1, self.cascades):  # instant-ngp's bitfield_max_pool
                pooled = bits[c - 1].reshape(half, 2, half, 2, half, 2).amax(dim=(1, 3, 5))
                bits[c, quarter:quarter + half, quarter:quarter + half, quarter:quarter + half] |= pooled
            self.occupied.copy_(bits.reshape(-1))

    def cube(self) -> np.ndarray:
        """(res, res, res) uint8 [z, y, x] (one cascade) or (cascades, res, res, res): the model's
        ``occupancy``."""
        shape = (self.res,) * 3 if self.cascades == 1 else (self.cascades,) + (self.res,) * 3
        return self.occupied.to(torch.uint8).reshape(shape).cpu().numpy().copy()


def cone_lattice(t0: torch.Tensor, dt: float, cone: float, t_end: float, max_points: int) -> torch.Tensor:
    """Per ray, the renderer's sample distances from t0: t_{k+1} = t_k + clamp(t_k * cone, dt, sqrt(3)) (fixed
    steps while t * cone < dt, then growing); columns up to where every ray is past t_end or max_points."""
    columns, t = [t0], t0
    while len(columns) < max_points and float(t.min()) <= t_end:
        t = t + torch.clamp(t * cone, min=dt, max=float(MAX_CONE_DT))
        columns.append(t)
    return torch.stack(columns, dim=1)


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


def density_penalty_term(optical_thickness: torch.Tensor, n_rays: int) -> torch.Tensor:
    """The L1 density penalty: the trained samples' sigma*dt summed, per ray on average. Its gradient on a sample's
    log density is sigma*dt / n_rays (density is exp of the network's output): every sample's density is pushed
    down, the more the denser it is; the photometric loss holds up only the density that the images need."""
    return optical_thickness.sum() / max(n_rays, 1)


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


def floater_measure(opacity: np.ndarray, alpha: np.ndarray) -> tuple[float, float, int]:
    """(mean opacity, fraction with opacity > FLOATER_OPACITY, count) over the pixels whose ground-truth
    ``alpha`` is 0: what the model puts where the images show nothing. ``opacity`` and ``alpha`` in [0, 1]."""
    empty = alpha <= 0.0
    count = int(empty.sum())
    if count == 0:
        return 0.0, 0.0, 0
    values = opacity[empty]
    return float(values.mean()), float((values > FLOATER_OPACITY).mean()), count


def evaluate(model: Model, split: NerfSplit, n_steps: int, max_views: int | None = None, device="cpu") -> dict:
    """PSNR of the model's renders (reference renderer, PyTorch networks on ``device``, white background) against
    the split's images composited on white; the floater measure from opacity renders of the same views."""
    from ..camera import Camera
    from ..reference import nerf as ref
    from .torch_field import torch_network, torch_radiance

    width, height = split.size
    if abs(split.centre[0] - width / 2) > 1e-3 or abs(split.centre[1] - height / 2) > 1e-3 or \
            abs(split.focal[0] - split.focal[1]) > 1e-3 * split.focal[0]:
        return {"psnr_db": None, "note": "not evaluated: the renderer's camera has square pixels and a centred "
                                         "principal point, these test views do not"}
    radiance = torch_radiance(model, device)
    density = torch_network(model, device)

    def density_only(p: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # opacity needs no colour
        return np.exp(density(p)[:, 0]), np.zeros((p.shape[0], 3), np.float32)

    psnrs, floater_sum, floater_over, floater_pixels = [], 0.0, 0.0, 0
    for k in range(min(len(split.c2w), max_views or len(split.c2w))):
        view = ref.NerfView(camera=Camera(split.c2w[k], split.fov_x_deg), n_steps=n_steps, background=(1, 1, 1))
        got = ref.render(model, width, height, view, radiance)[0].astype(np.float64) / 255.0
        rgba = split.rgba[k].astype(np.float64)
        want = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])
        psnrs.append(psnr_db(float(np.mean((got - want) ** 2))))
        opacity = ref.render(model, width, height, replace(view, mode="opacity"), density_only)[0][..., 0] / 255.0
        mean, over, count = floater_measure(opacity, rgba[..., 3])
        floater_sum, floater_over, floater_pixels = floater_sum + mean * count, floater_over + over * count, \
            floater_pixels + count
    pixels = max(floater_pixels, 1)
    return {"psnr_db": float(np.mean(psnrs)), "psnr_min_db": float(np.min(psnrs)), "test_views": len(psnrs),
            "eval_size": [width, height], "floater_opacity": floater_sum / pixels,
            "floater_fraction": floater_over / pixels}


def describe(metrics: dict) -> str:
    """The quality figures in words."""
    m = metrics
    if m["psnr_db"] is None:
        return m["note"]
    text = (f"PSNR {m['psnr_db']:.2f} dB (lowest view {m['psnr_min_db']:.2f} dB) on {m['test_views']} held-out "
            f"test views at {m['eval_size'][0]}x{m['eval_size'][1]}")
    if "floater_opacity" in m:
        text += (f"; floaters: mean opacity {m['floater_opacity']:.5f} where the test images are empty, "
                 f"{100 * m['floater_fraction']:.3f}% of those pixels above {FLOATER_OPACITY}")
    return text


def train(data: str | Path, preset: str = "hash", config_path: str | Path | None = None, steps: int = 20000,
          time_budget: float | None = None, batch: int = 1 << 15, lr: float = 1e-2, seed: int = 0,
          n_steps: int = 1024, checkpoint: Path | None = None, resume: Path | None = None, progress: bool = True,
          dtype: str = "float16", eval_views: int | None = None, device="cpu", aabb_scale: int = 1,
          density_penalty: float = DENSITY_PENALTY, background: str = "random") -> FitResult:
    """``batch`` is the target number of network samples per step; the rays per step adapt to it.
    ``density_penalty``: the weight of the mean per-ray sum of sigma*dt added to the loss. ``background``: what
    rays composite onto in training, ``random`` (a random colour per ray, instant-ngp's) or ``white``.

    ``device``: cpu, cuda or cuda:N. The network, the occupancy grid and the ray marching live there; the
    training images stay on the CPU, where the rays and their random numbers are drawn (the NumPy generator,
    so every device sees the same samples), and each step's rays and targets are moved to the device."""
    from .torch_field import TorchNerf

    device = loop.resolve_device(device)
    if not 1 <= aabb_scale <= MAX_AABB_SCALE:
        raise ConfigError(f"aabb_scale must be in 1..{MAX_AABB_SCALE}, got {aabb_scale}")
    if not density_penalty >= 0.0:
        raise ConfigError(f"density_penalty must be >= 0, got {density_penalty}")
    if background not in BACKGROUNDS:
        raise ConfigError(f"background must be one of {', '.join(BACKGROUNDS)}, got {background!r}")
    config = with_per_level_scale(load_nerf_config(loop.config_file("nerf", preset, config_path)),
                                  NERF_SDF_FINEST * aabb_scale)
    lo, hi = 0.5 - 0.5 * aabb_scale, 0.5 + 0.5 * aabb_scale  # the scene box; the network sees it as [0,1]^3
    cone = DEFAULT_CONE_ANGLE if aabb_scale > 1 else 0.0
    train_split = load_split(data, "train")
    test_split = load_split(data, "test")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    start = time.perf_counter()
    nerf = TorchNerf(grid_geometry(config["encoding"], 3), NetworkConfig.from_json(config["network"]),
                     NetworkConfig.from_json(config["rgb_network"]), 16, sh_degree(config["dir_encoding"]))
    grid = OccupancyGrid(cascades=cascades_of(aabb_scale))
    trainee = torch.nn.ModuleDict({"nerf": nerf, "occupancy": grid})
    trainee.register_buffer("progress", torch.tensor([0, 1024], dtype=torch.int64))  # (step, rays per step)
    trainee.to(device)
    optimizer = loop.adam_groups(nerf.density.grid.parameters(),
                                 [*nerf.density.layers.parameters(), *nerf.rgb_layers.parameters()], lr)
    dt = float(np.float32(math.sqrt(3.0) / n_steps))
    views, height, width = train_split.rgba.shape[:3]
    rgba = torch.from_numpy(train_split.rgba.reshape(-1, 4))
    offsets = torch.arange(n_steps + 1, dtype=torch.float32, device=device)

    def network_input(p: torch.Tensor) -> torch.Tensor:
        return p if aabb_scale == 1 else (p - lo) / aabb_scale

    def optical_thickness(p: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            h = nerf.density(network_input(p))[:, 0]
        return torch.exp(torch.clamp(h, max=MAX_LOG_DENSITY)) * dt

    def update_grid(step: int, everything: bool) -> None:
        n = grid.n_cells
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
        t_near, t_far = unit_box_hits(o, d, lo, hi)
        target = rgba[torch.from_numpy((view * height + py) * width + px)]
        return tuple(torch.from_numpy(a).to(device) for a in (o, d, t_near, t_far)) + (target.to(device),)

    def step() -> float:
        step_index, n_rays = (int(v) for v in trainee.progress)
        if step_index % OCC_UPDATE_EVERY == 0 or step_index == OCC_WARMUP:
            update_grid(step_index, everything=step_index == OCC_WARMUP)
        o, d, t_near, t_far, target = sample_rays(n_rays)
        # Every lattice point inside the box from a random offset, kept where its cell is occupied: t_near + (k + u)
        # dt, or the cone-stepped lattice from t_near + u dt (its steps in step_dt)
        u = torch.from_numpy(rng.random(n_rays, np.float32)).to(device)
        if cone == 0:
            t = t_near[:, None] + (offsets[None, :] + u[:, None]) * dt
            step_dt = torch.full_like(t, dt)
        else:
            t = cone_lattice(t_near + u * dt, dt, cone, float(t_far.max()), n_steps * aabb_scale + 1)
            step_dt = torch.clamp(t * cone, min=dt, max=float(MAX_CONE_DT))
        with torch.no_grad():
            cells = grid.cells(o[:, None, :] + t[..., None] * d[:, None, :], step_dt)
            keep = (t <= t_far[:, None]) & grid.occupied[cells]
            ray_c, k_c = torch.nonzero(keep, as_tuple=True)          # candidates, sorted by ray then t
            cells_c = cells[ray_c, k_c]
            trained = (grid.visible[cells_c] > VISIBLE_TRANSMITTANCE) if step_index >= OCC_WARMUP else \
                torch.ones_like(cells_c, dtype=torch.bool)
        ray_s = ray_c[trained]
        t_s = t[ray_c[trained], k_c[trained]]
        p = o[ray_s] + t_s[:, None] * d[ray_s]
        sigma, rgb = nerf(network_input(p), d[ray_s], max_log_density=MAX_LOG_DENSITY)
        sdt = sigma * step_dt[ray_c[trained], k_c[trained]]
        excl, total = segment_exclusive_sum(sdt, ray_s, n_rays)
        weight = torch.exp(-excl) * (1.0 - torch.exp(-sdt))
        colour = torch.zeros(n_rays, 3, device=device).index_add_(0, ray_s, weight[:, None] * rgb)
        behind = torch.from_numpy(rng.random((n_rays, 3), np.float32)).to(device)  # drawn either way: same rng
        if background == "white":
            behind = torch.ones_like(behind)
        predicted = colour + torch.exp(-total)[:, None] * behind
        wanted = target[:, :3] * target[:, 3:] + behind * (1.0 - target[:, 3:])
        loss = torch.mean((predicted - wanted) ** 2)
        if density_penalty > 0.0:
            loss = loss + density_penalty * density_penalty_term(sdt, n_rays)
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
            "seed": seed, "n_steps": n_steps, "aabb_scale": aabb_scale, "density_penalty": density_penalty,
            "background": background}
    state = loop.run(step, steps, batch, trainee, optimizer, rng, meta, time_budget, checkpoint, resume=resume,
                     progress=progress, device=device)
    update_grid(int(trainee.progress[0]), everything=True)  # the saved grid: every cell evaluated at the end
    seconds = time.perf_counter() - start
    model = nerf.to_model(config, grid.cube(), dtype, aabb_scale)
    metrics = evaluate(model, test_split, n_steps, eval_views, device)
    label = loop.device_label(device)
    model.extra = {"source": str(data), "train_views": int(views), "train_size": [int(width), int(height)],
                   "n_steps": n_steps, "aabb_scale": aabb_scale, "density_penalty": density_penalty,
                   "train_background": background,
                   "occupancy_fraction": round(float(grid.occupied[:grid.res ** 3].float().mean()), 4),
                   "train_steps": state.step, "train_seconds": round(state.elapsed, 1), "train_device": label,
                   "batch": batch, **metrics}
    return FitResult(model, state.step, seconds, metrics, state.losses, label)
