"""The render farm measured on this machine, side by side in one run: frames/s and strips/s with one process,
1 Ray worker and 2 Ray workers, and the terms of the scaling model in docs/farm.md (model transfer, result
bytes and their transfer rate, the driver's writing).

    PYTHONPATH=. .venv/bin/python scripts/farm_bench.py [--frames 24] [--size 256]

Starts its own Ray cluster on 127.0.0.1 (2 'vulkan' units) and stops it."""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ngrender.farm import Farm, import_ray, model_payload, render_frames, render_png  # noqa: E402
from ngrender.pngio import PngStripWriter, write_png  # noqa: E402
from ngrender.scene import open_scene  # noqa: E402
from ngrender.session import RenderSession  # noqa: E402


def orbit(n: int) -> dict[int, dict]:
    return {i: {"camera": {"orbit": {"azimuth": 360.0 * i / n, "elevation": 20.0, "radius": 2.5}, "fov_x": 50.0}}
            for i in range(n)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=24, help="frames of the orbit (sdf bunny)")
    parser.add_argument("--size", type=int, default=256, help="frame side in pixels")
    parser.add_argument("--strip-frame", type=int, default=2048, help="gigapixel frame side, strips of 128 rows")
    args = parser.parse_args()
    ray = import_ray()
    sdf, giga = ROOT / "scenes" / "sdf_bunny.json", ROOT / "scenes" / "gigapixel.json"
    views, size = orbit(args.frames), (args.size, args.size)
    side = args.strip_frame

    # One process, no Ray: the baseline.
    with RenderSession.from_scene(sdf) as session:
        session.renderer.render(*size, session.view(**views[0]))  # compile outside the timing
        start = time.perf_counter()
        for v in views.values():
            session.renderer.render(*size, session.view(**v))
        alone_fps = args.frames / (time.perf_counter() - start)
    with RenderSession.from_scene(giga, tile=(1024, 128)) as session, tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        session.renderer.render_to_png(Path(tmp) / "g.png", side, side, session.view())
        alone_sps = (side // 128) / (time.perf_counter() - start)
        strip, _ = session.renderer.render_strip(side, side, 0, session.view())

    ray.init(num_cpus=2, resources={"vulkan": 2}, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, logging_level="error")
    try:
        rows = []
        for workers in (1, 2):
            scene, model = open_scene(sdf)
            start = time.perf_counter()
            with Farm(model, scene, workers) as farm:
                started_s = time.perf_counter() - start
                render_frames(farm, {0: views[0]}, *size, lambda i, im: None)  # warm every worker's kernel
                render_frames(farm, {1: views[1]}, *size, lambda i, im: None)
                frames = render_frames(farm, views, *size, lambda i, im: None)
            scene, model = open_scene(giga)
            scene.tile = (1024, 128)
            with Farm(model, scene, workers) as farm, tempfile.TemporaryDirectory() as tmp:
                strips = render_png(farm, Path(tmp) / "g.png", {}, side, side)
            rows.append((workers, started_s, frames.tasks / frames.wall_s, strips.tasks / strips.wall_s))

        # Scaling-model terms.
        payload = model_payload(open_scene(sdf)[1])
        start = time.perf_counter()
        ref = ray.put(payload)
        put_s = time.perf_counter() - start
        echo = ray.remote(num_cpus=0)(lambda data: len(data))
        start = time.perf_counter()
        ray.get(echo.remote(ref))
        fetch_s = time.perf_counter() - start
        make = ray.remote(num_cpus=0)(lambda shape: np.zeros(shape, np.uint8))
        ray.get(make.remote(strip.shape))  # the function shipped once
        start = time.perf_counter()
        for _ in range(5):
            ray.get(make.remote(strip.shape))
        result_mb_s = 5 * strip.nbytes / (time.perf_counter() - start) / 1e6
    finally:
        ray.shutdown()

    with tempfile.TemporaryDirectory() as tmp:
        writer = PngStripWriter(Path(tmp) / "s.png", strip.shape[1], strip.shape[0] * 8)
        start = time.perf_counter()
        for _ in range(8):
            writer.write(strip)
        writer.close()
        png_mb_s = 8 * strip.nbytes / (time.perf_counter() - start) / 1e6
        with RenderSession.from_scene(sdf) as session:
            frame, _ = session.renderer.render(*size, session.view(**views[0]))
        start = time.perf_counter()
        for i in range(20):
            write_png(Path(tmp) / f"f{i}.png", frame)
        frame_write_fps = 20 / (time.perf_counter() - start)

    print(f"sdf bunny {size[0]}x{size[1]}, {args.frames} frames; gigapixel {side}x{side} in {side // 128} strips "
          f"of 128 rows")
    print(f"{'':<16}{'frames/s':>10}{'strips/s':>10}{'vs 1 worker':>13}{'worker start':>14}")
    print(f"{'one process':<16}{alone_fps:>10.2f}{alone_sps:>10.2f}{'':>13}{'':>14}")
    base = rows[0]
    for workers, started_s, fps, sps in rows:
        print(f"{f'{workers} Ray worker(s)':<16}{fps:>10.2f}{sps:>10.2f}"
              f"{f'{fps / base[2]:.2f}x / {sps / base[3]:.2f}x':>13}{started_s:>12.1f} s")
    print(f"model payload: {len(payload) / 1e6:.2f} MB; ray.put {put_s * 1e3:.1f} ms; a worker task reads it in "
          f"{fetch_s * 1e3:.1f} ms (same node)")
    print(f"results: a {size[0]}x{size[1]} frame is {size[0] * size[1] * 3 / 1e6:.3f} MB, a strip "
          f"{strip.nbytes / 1e6:.2f} MB; worker -> driver {result_mb_s:.0f} MB/s (object store, same node)")
    print(f"driver writing: PNG strips {png_mb_s:.0f} MB/s of RGB in (zlib level 6, one thread); "
          f"{size[0]}x{size[1]} frame PNGs {frame_write_fps:.0f} frames/s")


if __name__ == "__main__":
    main()
