"""Benchmarks: the fused Vulkan render, the NumPy reference and PyTorch CPU on the same frame, side by side in
one run, so the ratios hold on a shared, noisy machine even when absolute times do not.

The PyTorch peer evaluates the encoding and the MLPs (where the time goes) with PyTorch; the per-ray marching
bookkeeping is the reference's, so the three engines do exactly the same work."""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .apps.registry import app_spec
from .encoding import encoding_spec
from .errors import ConfigError
from .scene import ROOT, load_scene_and_model, scene_for
from .session import RenderSession


def print_header(header: str) -> None:
    print(header)
    print("-" * len(header))


def median_ms(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    result, times = None, []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), result


def reference_renderer(app: str, model, view, network=None) -> Callable[[int, int], tuple[np.ndarray, int]]:
    """(width, height) -> (image, network evaluations) with the NumPy networks or the given peer's (the app's
    registered reference)."""
    render = app_spec(app).reference_render()

    def run(w: int, h: int):
        image, counts = render(model, w, h, view, network)
        return image, int(np.sum(counts))

    return run


def torch_peer(app: str, model):
    """The PyTorch peer of the app's networks, or None without PyTorch."""
    return app_spec(app).peer_network(model)


def open_session(app: str, scene: str | Path | None, **options) -> RenderSession:
    """A scene file (its camera and settings) or a bare model file; by default the app's real-data scene."""
    return RenderSession.from_scene(Path(scene) if scene else scene_for(app), **options)


def source_model(path: str | Path):
    """The model of a scene file, a model file or an instant-ngp snapshot."""
    return load_scene_and_model(path)[1]


def bench(app: str, scene: str | Path | None = None, sizes=(256, 512), repeats: int = 3,
          device: str | None = None, variant: str = "auto", validation: bool = False) -> list[dict]:
    """Print and return one row per (size, engine): ms/frame, Msamples/s and speed-ups."""
    rows = []
    with open_session(app, scene, device=device, variant=variant, validation=validation) as session:
        model, view = session.model, session.view()
        if session.model.app != app:
            raise ConfigError(f"bench {app}: the scene's model is a {session.model.app!r} model")
        peer = torch_peer(app, model)
        engines = {"numpy reference": reference_renderer(app, model, view)}
        if peer is not None:
            engines["pytorch cpu"] = reference_renderer(app, model, view, peer)
        slow_repeats = max(1, repeats // 2)
        print(f"{app} benchmark on {session.device.info.name} ({session.app.variant} variant); "
              f"model: {model.geometry.describe()}, MLP {model.net.n_neurons}x{model.net.n_hidden_layers}")
        print(f"median of {repeats} Vulkan runs and {slow_repeats} CPU-engine runs; the same frame for every "
              "engine; samples = network evaluations\n")
        print_header(f"{'size':>10} {'engine':<16} {'ms/frame':>10} {'Msamples/s':>11} {'vs NumPy':>9} "
                     f"{'vs PyTorch':>11}")
        for size in sizes:
            session.renderer.render(size, size, view)  # warm-up: pipeline JIT, caches
            timings = {"vulkan fused": median_ms(lambda: session.renderer.render(size, size, view), repeats)[0]}
            np_ms, (np_img, samples) = median_ms(lambda: engines["numpy reference"](size, size), slow_repeats)
            timings["numpy reference"] = np_ms
            vk_img = session.renderer.render(size, size, view)[0]
            if "pytorch cpu" in engines:
                timings["pytorch cpu"] = median_ms(lambda: engines["pytorch cpu"](size, size), slow_repeats)[0]
            for engine, ms in timings.items():
                row = {"app": app, "size": size, "engine": engine, "ms": ms, "samples": samples,
                       "msamples_s": samples / ms / 1e3, "vs_numpy": np_ms / ms,
                       "vs_pytorch": timings.get("pytorch cpu", float("nan")) / ms}
                rows.append(row)
                print(f"{f'{size}x{size}':>10} {engine:<16} {ms:>10.1f} {row['msamples_s']:>11.3f} "
                      f"{row['vs_numpy']:>8.2f}x {row['vs_pytorch']:>10.2f}x")
            diff = np.abs(vk_img.astype(int) - np_img.astype(int)).max(axis=2)
            print(f"{'':>10} {samples / size ** 2:.1f} samples/pixel; Vulkan vs NumPy image: "
                  f"{(diff > 2).mean():.3%} of pixels differ by more than 2/255")
        if "use_occupancy" in session.app.view_fields:  # NeRF: what skipping empty space saves
            size = sizes[0]
            off = session.app.make_view({**session.scene.view, "use_occupancy": False}) if session.scene else \
                session.app.make_view({"use_occupancy": False})
            reference = app_spec(app).reference_render()
            _, with_occ = reference(model, size, size, view)
            _, without = reference(model, size, size, off)
            print(f"\noccupancy-grid skipping at {size}x{size}: {without.mean():.1f} -> {with_occ.mean():.1f} "
                  f"network samples per ray ({without.sum() / max(with_occ.sum(), 1):.1f}x fewer)")
    return rows


def compare_encodings(app: str, models: list[str | Path] | None = None, size: int = 256, repeats: int = 3,
                      device: str | None = None, variant: str = "auto") -> list[dict]:
    """Same app, different encodings (by default the hash and simplex stand-ins, fitted identically): grid
    lookups per sample, the fit's held-out error stored with each model, and the fused render's speed. Models
    are model files, scene files or instant-ngp snapshots."""
    if models is None:
        stem = app_spec(app).stand_in
        if stem is None:
            raise ValueError(f"no default models to compare for {app}; pass --models")
        models = [ROOT / "tests" / "data" / f"{stem}_{kind}.safetensors" for kind in ("hash", "simplex")]
    rows = []
    print(f"{app}: encodings side by side at {size}x{size} (median of {repeats}); quality = held-out mean "
          "absolute error of the fit (lower is better)\n")
    print_header(f"{'model':<34} {'encoding':<8} {'lookups/sample':>14} {'fit error':>10} {'ms/frame':>9} "
                 f"{'Msamples/s':>11}")
    for path in models:
        model = source_model(path)
        with RenderSession(model, device=device, variant=variant) as session:
            view = session.view()
            session.renderer.render(size, size, view)
            ms = median_ms(lambda: session.renderer.render(size, size, view), repeats)[0]
        samples = reference_renderer(app, model, view)(size, size)[1]
        geom = model.geometry
        lookups = geom.n_levels * encoding_spec(geom.kind).lookups(geom.n_dims)
        row = {"model": Path(path).name, "encoding": geom.kind, "lookups": lookups,
               "fit_error": model.extra.get("fit_mae", float("nan")), "ms": ms, "msamples_s": samples / ms / 1e3}
        rows.append(row)
        print(f"{row['model']:<34} {row['encoding']:<8} {row['lookups']:>14} {row['fit_error']:>10.4f} "
              f"{ms:>9.1f} {row['msamples_s']:>11.3f}")
    if len(rows) == 2:
        print(f"\n{rows[1]['encoding']} vs {rows[0]['encoding']}: {rows[1]['msamples_s'] / rows[0]['msamples_s']:.2f}x "
              f"samples/s, {rows[1]['lookups'] / rows[0]['lookups']:.2f}x lookups, fit error "
              f"{rows[1]['fit_error'] / rows[0]['fit_error']:.2f}x")
    return rows


def compare_variants(app: str, scene: str | Path | None = None, size: int = 256, repeats: int = 5,
                     device: str | None = None,
                     variants: tuple[str, ...] = ("baked", "buffered", "shared", "shared-fp16"),
                     mlp_dispatches: tuple[str, ...] = ("network", "coopmat")) -> list[dict]:
    """The kernel variants (fused) and the unfused pipeline's MLP kernels side by side on one frame: the runs
    alternate between them (one round of every one per repeat), so a noisy machine slows all alike."""
    runs: dict[str, RenderSession] = {}
    try:
        for variant in variants:
            try:
                runs[f"fused {variant}"] = open_session(app, scene, device=device, variant=variant)
            except ConfigError as exc:
                if variant != "shared-fp16":
                    raise
                print(f"(fused shared-fp16 left out: {exc})")  # a device without shaderFloat16
        for dispatch in mlp_dispatches:
            runs[f"unfused mlp={dispatch}"] = open_session(app, scene, device=device, variant="buffered",
                                                            pipeline="unfused", mlp_dispatch=dispatch)
        first = next(iter(runs.values()))
        print(f"{app}: kernel variants side by side at {size}x{size} on {first.device.info.name}, median of "
              f"{repeats} alternating rounds; image difference against the first row\n")
        views = {name: s.view() for name, s in runs.items()}
        images = {name: s.renderer.render(size, size, views[name])[0] for name, s in runs.items()}  # warm-up
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(repeats):
            for name, s in runs.items():
                times[name].append(median_ms(lambda: s.renderer.render(size, size, views[name]), 1)[0])
        base_name = next(iter(runs))
        base_ms = float(np.median(times[base_name]))
        print_header(f"{'kernel':<22} {'ms/frame':>9} {'vs ' + base_name:>18} {'pixels > 2/255':>15}")
        rows = []
        for name in runs:
            ms = float(np.median(times[name]))
            diff = np.abs(images[name].astype(int) - images[base_name].astype(int)).max(axis=2)
            row = {"app": app, "kernel": name, "ms": ms, "speedup": base_ms / ms, "pixels_off": float((diff > 2).mean())}
            rows.append(row)
            print(f"{name:<22} {ms:>9.1f} {row['speedup']:>17.2f}x {row['pixels_off']:>14.3%}")
        return rows
    finally:
        for s in runs.values():
            s.close()
