"""Screenshot comparison against tests/screenshots/*.png (made on lavapipe, the reference platform).

On failure the test image, the reference and a magnified difference are written next to the reference. On any
other device the comparison is skipped, saying why: a GPU may round a last bit differently (fused multiply-add,
another exp), which the reference tests (test_gigapixel.py, test_fused_3d.py) allow for and a 1-LSB screenshot
does not.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import default_device_info
from ngrender.reference.output import psnr_db

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return psnr_db(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2), 255.0)


def compare_screenshot(name: str, image: np.ndarray, regenerate: bool, max_abs: int = 1,
                       max_mean: float = 0.01) -> None:
    """Assert ``image`` equals the committed reference within ``max_abs`` per channel and ``max_mean`` mean."""
    info = default_device_info()
    if "llvmpipe" not in info.name:
        pytest.skip(f"the reference screenshots are lavapipe's renders; this device is {info.name}")
    ref_path = SCREENSHOTS / f"{name}.png"
    if regenerate or not ref_path.exists():
        if not regenerate:
            raise AssertionError(f"no reference screenshot {ref_path}; run pytest --regenerate-screenshots")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(ref_path)
        return
    ref = np.asarray(Image.open(ref_path).convert("RGB"))
    if ref.shape != image.shape:
        raise AssertionError(f"{name}: image {image.shape} vs reference {ref.shape}")
    diff = np.abs(image.astype(np.int16) - ref.astype(np.int16))
    if diff.max() > max_abs or diff.mean() > max_mean:
        Image.fromarray(image).save(SCREENSHOTS / f"{name}.test.png")
        Image.fromarray(np.clip(diff * 32, 0, 255).astype(np.uint8)).save(SCREENSHOTS / f"{name}.diff.png")
        raise AssertionError(f"{name}: max abs diff {diff.max()}, mean {diff.mean():.4f}, "
                             f"PSNR {psnr(image, ref):.2f} dB (wrote {name}.test.png and {name}.diff.png)")
