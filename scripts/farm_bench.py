"""The render farm measured on this machine, side by side in one run: frames/s and strips/s with one process,
1 Ray worker and 2 Ray workers, and the terms of the scaling model in docs/farm.md (model transfer, result
bytes and their transfer rate, the driver's writing).

    PYTHONPATH=. .venv/bin/python scripts/farm_bench.py [--frames 24] [--size 256]

Starts its own Ray cluster on 127.0.0.1 (2 'vulkan' units) and stops it."""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ngrender.farm import Farm, import_ray, model_payload, render_frames, render_png  # noqa: E402
from ngrender.fileio import write_bytes  # noqa: E402
from ngrender.pngio import LEVEL, PngStripWriter, deflate_rows, write_png  # noqa: E402
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
        rows, pngs = [], []
        for workers in (1, 2):
            scene, model = open_scene(sdf)
            start = time.perf_counter()
            with Farm(model, scene, workers) as farm:
                started_s = time.perf_counter() - start
                render_frames(farm, {0: views[0]}, *size, lambda i, im: None)  # warm every worker's kernel
                render_frames(farm, {1: views[1]}, *size, lambda i, im: None)
                frames = render_frames(farm, views, *size, lambda i, png: pngs.append(png))
                if workers == 1:  # a task's round trip with no work in it
                    ping = farm.workers[0]
                    ray.get(ping.pid.remote())
                    start = time.perf_counter()
                    for _ in range(50):
                        ray.get(ping.pid.remote())
                    task_ms = (time.perf_counter() - start) / 50 * 1e3
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
        ray.get(echo.remote(b""))  # the function shipped and a worker process up, outside the timing
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
        rates = {}
        deflated = deflate_rows(strip)
        for how in ("compressing", "appending"):
            writer = PngStripWriter(Path(tmp) / "s.png", strip.shape[1], strip.shape[0] * 8)
            start = time.perf_counter()
            for _ in range(8):
                writer.write(strip) if how == "compressing" else writer.write_deflated(deflated)
            writer.close()
            rates[how] = 8 * strip.nbytes / (time.perf_counter() - start) / 1e6
        frame = np.asarray(Image.open(io.BytesIO(pngs[0])))
        start = time.perf_counter()
        for i in range(20):
            write_png(Path(tmp) / f"f{i}.png", frame)
        encode_fps = 20 / (time.perf_counter() - start)
        start = time.perf_counter()
        for i in range(20):
            write_bytes(Path(tmp) / f"g{i}.png", pngs[i])
        append_fps = 20 / (time.perf_counter() - start)
    png_frame = sum(map(len, pngs)) / len(pngs)

    print(f"sdf bunny {size[0]}x{size[1]}, {args.frames} frames; gigapixel {side}x{side} in {side // 128} strips "
          f"of 128 rows")
    print(f"{'':<18}{'frames/s':>10}{'strips/s':>10}{'frames, strips vs 1 worker':>28}{'workers start':>15}")
    print(f"{'one process':<18}{alone_fps:>10.2f}{alone_sps:>10.2f}")
    base = rows[0]
    for workers, started_s, fps, sps in rows:
        print(f"{f'{workers} Ray worker(s)':<18}{fps:>10.2f}{sps:>10.2f}"
              f"{f'{fps / base[2]:.2f}x, {sps / base[3]:.2f}x':>28}{started_s:>13.1f} s")
    print(f"model transfer: {len(payload) / 1e6:.2f} MB; ray.put {put_s * 1e3:.1f} ms; a task on a worker reads it "
          f"in {fetch_s * 1e3:.1f} ms (same node); a task's round trip without work: {task_ms:.2f} ms")
    print(f"results: a {size[0]}x{size[1]} frame is {size[0] * size[1] * 3 / 1e6:.3f} MB of RGB, "
          f"{png_frame / 1e6:.3f} MB as PNG; a {strip.shape[1]}x{strip.shape[0]} strip {strip.nbytes / 1e6:.2f} MB, "
          f"{len(deflated.data) / 1e6:.2f} MB deflated; worker -> driver {result_mb_s:.0f} MB/s (object store, "
          "same node)")
    print(f"driver writing a strip PNG: {rates['appending']:.0f} MB/s of RGB appending deflated strips, "
          f"{rates['compressing']:.0f} MB/s compressing them itself (zlib level {LEVEL}, one thread)")
    print(f"driver writing {size[0]}x{size[1]} frame PNGs: {append_fps:.0f} frames/s writing the workers' bytes, "
          f"{encode_fps:.0f} frames/s encoding them itself")


if __name__ == "__main__":
    main()
