"""The viewer's before/after table of docs/performance.md: `ngrender view SCENE --benchmark SECONDS` for every
default scene at 960x540, before (`--no-dynamic --resolution-scale 0.5`: every frame at half the window, the old
default) and after (the defaults: dynamic resolution, refinement to the full window at rest), one run at a time,
under an Xvfb this script starts (no display needed). Prints a Markdown table; `--json FILE` keeps the figures.

    .venv/bin/python scripts/viewer_benchmark.py [--seconds 10] [--scenes gigapixel sdf_bunny ...] [--json F]

Run it with nothing else busy on the machine: the figures are frame times on its CPU cores (lavapipe)."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ngrender.errors import NgrenderError
from ngrender.viewer.x11 import start_xvfb

ROOT = Path(__file__).resolve().parent.parent
SCENES = ("gigapixel", "sdf_bunny", "volume_head", "nerf_bunny")
RUNS = (("before", ["--no-dynamic", "--resolution-scale", "0.5"]), ("after", []))


def benchmark(scene: str, extra: list[str], seconds: float, size: str, display: str, folder: Path) -> dict:
    out = folder / f"{scene}_{len(extra)}.json"
    command = [sys.executable, "-m", "ngrender", "view", str(ROOT / "scenes" / f"{scene}.json"), "--size", size,
               "--benchmark", str(seconds), "--benchmark-json", str(out), *extra]
    print("$", " ".join(command[1:]), file=sys.stderr)
    done = subprocess.run(command, env={**os.environ, "DISPLAY": display}, cwd=ROOT, text=True, capture_output=True)
    sys.stderr.write(done.stdout)
    if done.returncode != 0:
        sys.exit(f"{scene} failed: {done.stderr.strip()}")
    return json.loads(out.read_text())


def table(results: dict[str, dict[str, dict]]) -> str:
    rows = ["| scene | before: FPS moving | median / p90 ms | after: FPS moving | median / p90 ms | mean scale "
            "moving | time to full refinement |", "|---|---|---|---|---|---|---|"]
    for scene, runs in results.items():
        b, a = runs["before"], runs["after"]
        steps = f", steps / {a['mean_step_divisor']:.1f}" if a["mean_step_divisor"] > 1 else ""
        refine = f"{a['refine_s']:.1f} s" if a["refined"] else f"not within {a['give_up_s']:g} s"
        rows.append(f"| {scene} | {b['fps_moving']:.1f} | {b['median_ms']:.0f} / {b['p90_ms']:.0f} | "
                    f"{a['fps_moving']:.1f} | {a['median_ms']:.0f} / {a['p90_ms']:.0f} | "
                    f"{a['mean_resolution_factor']:.3f}{steps} | {refine} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="flying time per run (default 10)")
    parser.add_argument("--scenes", nargs="+", default=list(SCENES), choices=SCENES)
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    args = parser.parse_args()
    try:
        xvfb, display = start_xvfb()
    except NgrenderError as exc:
        sys.exit(f"viewer_benchmark: {exc}")
    results: dict[str, dict[str, dict]] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            for scene in args.scenes:
                results[scene] = {name: benchmark(scene, extra, args.seconds, args.size, display, Path(folder))
                                  for name, extra in RUNS}
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)
    if args.json:
        sys.path.insert(0, str(ROOT))
        from ngrender.fileio import write_json

        write_json(args.json, results)
    print(table(results))


if __name__ == "__main__":
    main()
