"""Fit a gigapixel-image model (grid encoding + MLP: image-plane coordinate -> RGB) to a real image."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..encoding import grid_geometry, per_level_scale_for
from ..model import NetworkConfig, load_network_config
from . import loop
from .loop import FitResult


def load_image(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3); large images are allowed (the shaded-relief map is 58 MP) up to the limits of
    data.images.open_image (size, memory, decompression bombs)."""
    from ..data.images import read_image

    return read_image(path, "RGB", "image", bytes_per_pixel=16)


def image_config(base: dict, width: int, height: int) -> dict:
    """instant-ngp's GIA rule: the finest level is max(image res) / 2, unless the config sets per_level_scale."""
    encoding = dict(base["encoding"])
    if "per_level_scale" not in encoding:
        n_levels = int(encoding.get("n_levels", 16))
        base_res = int(encoding.get("base_resolution", 16))
        encoding["per_level_scale"] = per_level_scale_for(base_res, max(width, height) / 2, n_levels)
    return {"encoding": encoding, "network": dict(base["network"])}


def pixel_centres(idx: np.ndarray, width: int, height: int) -> np.ndarray:
    """Image-plane coordinates (u, v in [0,1]) of flat pixel indices, float32."""
    y, x = np.divmod(idx, width)
    return np.stack([(x + 0.5) / width, (y + 0.5) / height], axis=1).astype(np.float32)


def evaluate_psnr(field, image: np.ndarray, chunk: int = 1 << 18, device="cpu") -> float:
    """PSNR (dB) of the model's rendering at the image's own resolution, all pixels, values in [0, 1]; the field
    runs on ``device`` (it is moved there), the error is summed on the CPU."""
    import torch

    field = field.to(device)
    h, w, _ = image.shape
    flat = image.reshape(-1, 3)
    sq_err = 0.0
    with torch.no_grad():
        for start in range(0, h * w, chunk):
            idx = np.arange(start, min(start + chunk, h * w))
            pred = field(torch.from_numpy(pixel_centres(idx, w, h)).to(device)).clamp(0, 1).cpu().numpy()
            sq_err += float(((pred - flat[idx] / 255.0) ** 2).sum())
    mse = sq_err / (h * w * 3)
    return loop.psnr_db(mse)


def describe(metrics: dict) -> str:
    """The quality figures in words."""
    w, h = metrics["source_size"]
    return f"PSNR {metrics['psnr_db']:.2f} dB against the source image at {w}x{h}"


def train(image: str | Path, preset: str = "hash", config_path: str | Path | None = None, steps: int = 20000,
          time_budget: float | None = None, batch: int = 1 << 16, lr: float = 1e-2, seed: int = 0,
          progress: bool = True, dtype: str = "float16", checkpoint: Path | None = None,
          resume: Path | None = None, device="cpu") -> FitResult:
    """Adam on L2 at random pixel centres (instant-ngp's optimiser settings); fp16 weights as rendered.

    ``image``: an image file or a bundled name (data.images.resolve_image); the network config is
    ``config_path``, else the preset's, configs/gigapixel_<preset>.json.

    ``device``: cpu, cuda or cuda:N. The image stays on the CPU (it may be 58 MP) and the pixels are drawn there;
    each batch (2 coordinates + 3 target values a sample) is moved to the device."""
    import torch

    from .torch_field import TorchField

    from ..data.images import resolve_image

    device = loop.resolve_device(device)
    image_path = resolve_image(str(image))
    pixels = load_image(image_path)
    h, w, _ = pixels.shape
    if h * w < 4:
        raise ConfigError(f"image {image_path} is too small ({w}x{h})")
    config = image_config(load_network_config(loop.config_file("gigapixel", preset, config_path)), w, h)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    field = TorchField(grid_geometry(config["encoding"], 2), NetworkConfig.from_json(config["network"]), 3).to(device)
    opt = loop.adam(field, lr)
    flat = pixels.reshape(-1, 3)

    def step() -> float:
        idx = rng.integers(0, h * w, batch)
        x = torch.from_numpy(pixel_centres(idx, w, h)).to(device)
        target = torch.from_numpy(flat[idx].astype(np.float32) / 255.0).to(device)
        loss = torch.mean((field(x) - target) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    meta = {"trainer": "gigapixel", "image": Path(image_path).name, "config": config, "batch": batch, "seed": seed}
    state = loop.run(step, steps, batch, field, opt, rng, meta, time_budget, checkpoint, resume=resume,
                     progress=progress, device=device)
    model = field.to_model("gigapixel", config, dtype)
    metrics = {"psnr_db": evaluate_psnr(TorchField.from_model(model), pixels, device=device), "source_size": [w, h]}
    label = loop.device_label(device)
    model.extra = {"source": Path(image_path).name, "source_size": [w, h], "psnr_db": round(metrics["psnr_db"], 3),
                   "train_steps": state.step, "train_seconds": round(state.elapsed, 1), "train_device": label,
                   "batch": batch}
    return FitResult(model, state.step, state.elapsed, metrics, state.losses, label)
