"""The figures of docs/mesh.md, measured in one run: ``python scripts/mesh_benchmark.py``.

1. ``ngrender mesh`` of each 3D default scene at 256^3, as a user runs it (a fresh process): wall time, peak RSS,
   triangles; the bunnies' Chamfer distance to the source scan.
2. Peak RSS at 512^3 (and the smaller grids) against the size of a whole 512^3 float32 grid: bounded by the slab.
3. scikit-image vs PyMCubes on the same sampled volume (the SDF bunny at 256^3): time side by side.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCENES = ("sdf_bunny", "nerf_bunny", "volume_head")


def run_mesh(scene: str, resolution: int, out: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, the command's summary line) of ``ngrender mesh`` in a fresh process."""
    cmd = [sys.executable, "-m", "ngrender", "mesh", str(ROOT / "scenes" / f"{scene}.json"), "--out", str(out),
           "--resolution", str(resolution), "--force"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr}")
    return seconds, usage.ru_maxrss / 1024, stdout.strip()


def chamfer_line(path: Path) -> str:
    import trimesh

    from ngrender.mesh_accuracy import chamfer_percent, scan_in_cube

    mesh = trimesh.load(path, process=False)
    scan_v, scan_f = scan_in_cube("bunny")
    both, to_scan, to_mesh = chamfer_percent(mesh.vertices, mesh.faces, scan_v, scan_f)
    return f"Chamfer {both:.3f} % of the diagonal (mesh -> scan {to_scan:.3f} %, scan -> mesh {to_mesh:.3f} %)"


def compare_libraries(resolution: int) -> None:
    import mcubes
    import numpy as np
    from skimage.measure import marching_cubes

    from ngrender.apps.points import FieldPoints
    from ngrender.model import load_model
    from ngrender.vk.device import Device

    model = load_model(ROOT / "assets" / "sdf_bunny_hash.safetensors")
    n = resolution
    with Device() as device, FieldPoints(device, model) as points:
        grid = points.grid((0.0, 0.0, 0.0), 1.0 / (n - 1), (n, n, n), 0, n)
    volume = np.ascontiguousarray(grid.transpose(2, 1, 0))
    for name, run in (("scikit-image 0.26 marching_cubes (Lewiner)", lambda: marching_cubes(volume, 0.0)),
                      ("PyMCubes 0.1.6 marching_cubes", lambda: mcubes.marching_cubes(volume, 0.0))):
        best = []
        for _ in range(3):
            start = time.perf_counter()
            verts, faces = run()[:2]
            best.append(time.perf_counter() - start)
        print(f"  {name}: {min(best):.2f} s (best of 3), {len(verts):,} vertices, {len(faces):,} triangles")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--memory", type=int, nargs="*", default=[16, 128, 256, 512],
                        help="grids whose peak RSS is measured (SDF bunny)")
    parser.add_argument("--scenes", nargs="*", default=list(SCENES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # Every `ngrender mesh` runs before this process imports anything large: Linux counts the RSS a child
        # had before its exec (a copy of this process) in the child's peak RSS.
        runs = {(scene, args.resolution): run_mesh(scene, args.resolution, Path(tmp) / f"{scene}.ply")
                for scene in args.scenes}
        for resolution in args.memory:
            if ("sdf_bunny", resolution) not in runs:
                runs["sdf_bunny", resolution] = run_mesh("sdf_bunny", resolution, Path(tmp) / f"m{resolution}.ply")
        print(f"## ngrender mesh at {args.resolution}^3, one fresh process each")
        for scene in args.scenes:
            seconds, peak, summary = runs[scene, args.resolution]
            print(f"- {scene}: {seconds:.1f} s wall, peak RSS {peak:.0f} MiB; {summary.split(': ', 1)[1]}")
            if scene in ("sdf_bunny", "nerf_bunny"):
                print(f"  {chamfer_line(Path(tmp) / f'{scene}.ply')}")
        print("## peak RSS of `ngrender mesh scenes/sdf_bunny.json` by grid (a whole float32 grid would be "
              "resolution^3 x 4 bytes)")
        for resolution in args.memory:
            seconds, peak, summary = runs["sdf_bunny", resolution]
            grid_mib = resolution ** 3 * 4 / 2 ** 20
            triangles = summary.split(", ")[1].split(" from")[0]
            print(f"- {resolution}^3: peak RSS {peak:.0f} MiB (the whole grid would be {grid_mib:.0f} MiB), "
                  f"{triangles}, {seconds:.1f} s")
        print(f"## marching cubes libraries on the same {args.resolution}^3 volume (SDF bunny, sampled by the kernel)")
        compare_libraries(args.resolution)


if __name__ == "__main__":
    main()
