"""Benchmarks: the fused Vulkan render, the NumPy reference and PyTorch CPU on the same frame, side by side in
one run, so the ratios hold on a shared, noisy machine even when absolute times do not."""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .reference import gigapixel as ref
from .session import RenderSession

DEFAULT_SCENES = {"gigapixel": Path(__file__).resolve().parent.parent / "scenes" / "gigapixel.json"}


def median_ms(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    result, times = None, []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), result


def torch_renderer(model) -> Callable[[int, int, tuple], np.ndarray] | None:
    """The same per-pixel math in PyTorch CPU (None when the [train] extra is not installed)."""
    try:
        import torch

        from .train.torch_field import TorchField
    except ImportError:
        return None
    field = TorchField.from_model(model).eval()

    def render(width: int, height: int, window) -> np.ndarray:
        uv = ref.pixel_coords(width, height, window)
        out = np.empty((uv.shape[0], 3), np.uint8)
        with torch.inference_mode():
            for start in range(0, uv.shape[0], 1 << 16):
                rgb = field(torch.from_numpy(uv[start:start + (1 << 16)])).numpy()
                out[start:start + (1 << 16)] = ref.to_uint8(rgb)
        return out.reshape(height, width, 3)

    return render


def bench_gigapixel(scene: str | Path | None = None, sizes=(256, 1024), repeats: int = 5,
                    device: str | None = None, variant: str = "auto", validation: bool = False) -> list[dict]:
    """Print and return one row per (size, engine): ms/frame, Mpx/s and speed-ups."""
    rows = []
    with RenderSession.from_scene(scene or DEFAULT_SCENES["gigapixel"], device=device, variant=variant,
                                  validation=validation) as session:
        model, window = session.model, session.view().window
        torch_render = torch_renderer(model)
        print(f"gigapixel benchmark on {session.device.info.name} ({session.app.variant} variant); "
              f"model: {model.geometry.describe()}, MLP {model.net.n_neurons}x{model.net.n_hidden_layers}")
        print(f"median of {repeats} runs (NumPy: of {max(1, repeats // 2)}); same frame for every engine\n")
        header = f"{'size':>10} {'engine':<16} {'ms/frame':>10} {'Mpx/s':>8} {'vs NumPy':>9} {'vs PyTorch':>11}"
        print(header)
        print("-" * len(header))
        for size in sizes:
            session.renderer.render(size, size, session.view())  # warm-up: pipeline JIT, caches
            vk_ms, (vk_img, _) = median_ms(lambda: session.renderer.render(size, size, session.view()), repeats)
            np_ms, np_img = median_ms(lambda: ref.render(model, size, size, window), max(1, repeats // 2))
            timings = {"vulkan fused": vk_ms, "numpy reference": np_ms}
            if torch_render is not None:
                torch_render(size, size, window)
                pt_ms, pt_img = median_ms(lambda: torch_render(size, size, window), repeats)
                timings["pytorch cpu"] = pt_ms
            diff = int(np.abs(vk_img.astype(int) - np_img.astype(int)).max())
            for engine, ms in timings.items():
                row = {"size": size, "engine": engine, "ms": ms, "mpx_s": size * size / ms / 1e3,
                       "vs_numpy": np_ms / ms, "vs_pytorch": timings.get("pytorch cpu", float("nan")) / ms}
                rows.append(row)
                print(f"{f'{size}x{size}':>10} {engine:<16} {ms:>10.1f} {row['mpx_s']:>8.3f} "
                      f"{row['vs_numpy']:>8.2f}x {row['vs_pytorch']:>10.2f}x")
            print(f"{'':>10} (Vulkan vs NumPy image: max abs difference {diff} / 255)")
    return rows
