"""Fit a neural volume (3D grid encoding + MLP -> RGB + density) to a real CT scan through a transfer function.

The scan (InVesalius' head CT: int16 Hounsfield units, anisotropic voxels) is placed in the unit cube at its
physical proportions (longest side 0.9, the scan's slice axis up). A fixed transfer function maps HU to colour
and density: skin and soft tissue faint and reddish, bone (HU >= 226, the scan's own bone threshold) dense and
ivory. Training samples are trilinear CT values at random points (half inside the scan's box) through the
transfer function; L2 loss. Quality: PSNR of rendered views against a direct volume rendering of the raw scan
with the same transfer function and the same marcher (reference/volume.py)."""
from __future__ import annotations

import plistlib
import tarfile
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .. import validate
from ..encoding import grid_geometry
from ..errors import ConfigError
from ..fileio import regular_file
from ..limits import check_host_memory

SCAN_DTYPES = ("int16", "uint16", "int8", "uint8", "float32")
from ..model import Model, NetworkConfig, load_network_config
from ..netconfig import with_per_level_scale
from . import loop
from .loop import FitResult, psnr_db

VOLUME_NAMES = {"head-ct": "volumes/Cranium.inv3"}
FIT_SIDE = 0.9
AIR_HU = -1024.0
DENSITY_SCALE = 20.0  # the model outputs density / DENSITY_SCALE; the scene sets density_scale to it
BONE = np.array([1.0, 0.95, 0.86], np.float32)
SKIN = np.array([0.85, 0.45, 0.35], np.float32)


@dataclass
class Scan:
    hu: np.ndarray             # float32 (z, y, x)
    spacing: tuple[float, float, float]  # mm along x, y, z
    name: str

    @property
    def extent(self) -> np.ndarray:
        """Physical size (mm) along the cube's x, y (the slice axis, up) and z."""
        z, y, x = self.hu.shape
        return np.array([x * self.spacing[0], z * self.spacing[2], y * self.spacing[1]])


def resolve_volume(name_or_path: str) -> Path:
    """A fetched data set name (``ngrender data fetch head-ct``) or an .inv3 file."""
    from ..data.fetch import resolve_data_file

    return resolve_data_file(name_or_path, VOLUME_NAMES, "volume")


def load_scan(path: str | Path) -> Scan:
    """An InVesalius project (.inv3: a gzip tarball with main.plist and the raw int16 matrix)."""
    path = Path(path)
    regular_file(path, "volume")
    try:
        with tarfile.open(path) as tar:
            members = {Path(m.name).name: m for m in tar.getmembers()}
            if "main.plist" not in members:
                raise ConfigError(f"volume {path} has no main.plist (not an InVesalius .inv3 project)")
            meta = validate.obj(plistlib.loads(tar.extractfile(members["main.plist"]).read()), f"{path}: main.plist")
            info = validate.obj(meta.get("matrix"), f"{path}: main.plist matrix", required=("filename", "shape"))
            name = validate.string(info["filename"], f"{path}: matrix filename")
            shape = info["shape"]
            if not (isinstance(shape, list) and len(shape) == 3):
                raise validate.fail(f"{path}: matrix shape", "3 integers", shape)
            shape = tuple(validate.integer(v, f"{path}: matrix shape", 2, 4096) for v in shape)
            dtype = validate.string(info.get("dtype", "int16"), f"{path}: matrix dtype", SCAN_DTYPES)
            member = members.get(name)
            if member is None or not member.isfile():
                raise ConfigError(f"volume {path}: matrix file {name!r} is not in the project")
            nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
            if member.size != nbytes:
                raise ConfigError(f"volume {path}: matrix holds {member.size} bytes, not a {shape} {dtype} volume")
            check_host_memory(nbytes * 4, f"volume {path}", "a smaller scan")
            raw = tar.extractfile(member).read()
            spacing = validate.numbers(meta.get("spacing", [1.0, 1.0, 1.0]), f"{path}: spacing", 3, 1e-6)
    except (tarfile.TarError, OSError, EOFError, zlib.error, plistlib.InvalidFileException, ValueError) as exc:
        raise ConfigError(f"cannot read volume {path}: {type(exc).__name__}: {exc}") from None
    hu = np.frombuffer(raw, np.dtype(dtype)).reshape(shape).astype(np.float32)
    if hu.max() <= hu.min():
        raise ConfigError(f"volume {path} is empty (every voxel is {hu.min()})")
    return Scan(hu, spacing, path.name)


def smoothstep(lo: float, hi: float, x):
    t = ((x - lo) / (hi - lo)).clip(0, 1)
    return t * t * (3 - 2 * t)


def transfer(hu):
    """HU -> (r, g, b, density / DENSITY_SCALE); works on numpy arrays and torch tensors."""
    bone = smoothstep(150.0, 450.0, hu)
    tissue = smoothstep(-250.0, -80.0, hu) * (1 - bone)
    density = (1.5 * tissue + 60.0 * bone) / DENSITY_SCALE
    rgb = [SKIN[c] * (1 - bone) + BONE[c] * bone for c in range(3)]
    return rgb + [density]


class ScanSampler:
    """Trilinear HU at unit-cube points (air outside the scan), through torch's grid_sample."""

    def __init__(self, scan: Scan) -> None:
        import torch

        self.scan = scan
        extent = scan.extent
        self.size = FIT_SIDE * extent / extent.max()             # the scan's box in the cube
        self.lo = 0.5 - self.size / 2
        # grid_sample wants (N, C, D, H, W) with x -> W, y -> H, z -> D; cube (x, y, z) = scan (x, slice, y)
        self.volume = torch.from_numpy(np.ascontiguousarray(scan.hu.transpose(1, 0, 2)))[None, None]

    def __call__(self, points):
        import torch

        p = torch.as_tensor(points, dtype=torch.float32)
        g = (p - torch.from_numpy(self.lo.astype(np.float32))) / torch.from_numpy(self.size.astype(np.float32))
        grid = (g * 2 - 1)[None, None, None]                      # (1, 1, 1, N, 3) in [-1, 1]
        hu = torch.nn.functional.grid_sample(self.volume, grid, mode="bilinear", padding_mode="zeros",
                                             align_corners=False)[0, 0, 0, 0]
        inside = ((g >= 0) & (g <= 1)).all(dim=1)
        return torch.where(inside, hu, torch.full_like(hu, AIR_HU))

    def network(self):
        """p (N, 3) numpy -> (N, 4) of the raw scan through the transfer function: a reference 'network'."""
        def evaluate(p: np.ndarray) -> np.ndarray:
            hu = self(np.clip(p, 0, 1)).numpy()
            return np.stack(transfer(hu), axis=1).astype(np.float32)
        return evaluate


def evaluate(model: Model, sampler: ScanSampler, size: int = 96, n_views: int = 4, device="cpu") -> dict:
    """PSNR of the model's renders against the raw scan's, same camera, transfer function and marcher; the
    model's network runs on ``device``, the scan's on the CPU."""
    from ..camera import orbit
    from ..reference import volume as ref
    from .torch_field import torch_network

    view = ref.VolumeView(density_scale=DENSITY_SCALE)
    psnrs = []
    for k in range(n_views):
        v = replace(view, camera=orbit(360.0 * k / n_views + 15, 15.0, 1.6))
        got = ref.render(model, size, size, v, network=torch_network(model, device))[0].astype(np.float64)
        want = ref.render(model, size, size, v, network=sampler.network())[0].astype(np.float64)
        mse = np.mean((got - want) ** 2) / 255.0 ** 2
        psnrs.append(psnr_db(mse))
    return {"psnr_db": float(np.mean(psnrs)), "psnr_views_db": [round(float(p), 2) for p in psnrs],
            "eval_size": size}


def describe(metrics: dict) -> str:
    """The quality figures in words."""
    m = metrics
    return (f"PSNR {m['psnr_db']:.2f} dB against direct volume rendering of the raw scan "
            f"({len(m['psnr_views_db'])} views at {m['eval_size']}x{m['eval_size']})")


def train(volume: str | Path, preset: str = "hash", config_path: str | Path | None = None, steps: int = 4000,
          time_budget: float | None = None, batch: int = 1 << 14, lr: float = 1e-2, seed: int = 0,
          checkpoint: Path | None = None, resume: Path | None = None, progress: bool = True,
          dtype: str = "float16", device="cpu", eval_size: int = 96) -> FitResult:
    """``eval_size``: side of the 4 views whose PSNR measures the model. ``device``: cpu, cuda or cuda:N. The
    scan stays on the CPU and each step's targets are sampled from it
    there (the same values whatever the device); the points and targets are moved to the device."""
    import torch

    from .torch_field import TorchField

    device = loop.resolve_device(device)
    path = resolve_volume(str(volume))
    scan = load_scan(path)
    # instant-ngp's volume rule when per_level_scale is left out: the finest level at the voxel resolution
    config = with_per_level_scale(load_network_config(loop.config_file("volume", preset, config_path)),
                                  max(scan.hu.shape))
    sampler = ScanSampler(scan)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    start = time.perf_counter()
    field = TorchField(grid_geometry(config["encoding"], 3), NetworkConfig.from_json(config["network"]), 4).to(device)
    optimizer = loop.adam(field, lr)
    lo, size = sampler.lo.astype(np.float32), sampler.size.astype(np.float32)

    def step() -> float:
        half = batch // 2
        p = np.concatenate([rng.random((half, 3), np.float32),
                            lo + rng.random((batch - half, 3), np.float32) * size])
        with torch.no_grad():
            target = torch.stack(transfer(sampler(p)), dim=1).to(device)
        loss = torch.mean((field(torch.from_numpy(p).to(device)) - target) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    meta = {"trainer": "volume", "volume": path.name, "config": config, "batch": batch, "seed": seed}
    state = loop.run(step, steps, batch, field, optimizer, rng, meta, time_budget, checkpoint, resume=resume,
                     progress=progress, device=device)
    seconds = time.perf_counter() - start
    model = field.to_model("volume", config, dtype)
    metrics = evaluate(model, sampler, size=eval_size, device=device)
    label = loop.device_label(device)
    model.extra = {"source": path.name, "scan_shape": list(scan.hu.shape), "spacing_mm": list(scan.spacing),
                   "density_scale": DENSITY_SCALE, "train_steps": state.step, "train_seconds": round(state.elapsed, 1),
                   "train_device": label, "batch": batch, **metrics}
    return FitResult(model, state.step, seconds, metrics, state.losses, label)
