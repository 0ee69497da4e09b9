#!/usr/bin/env python3
"""Device check: ngrender on one machine, in one run, into one report (``device_check.json`` + ``.md``).

    python scripts/device_check.py [--local] [--quick] [--budget SECONDS] REPORT_DIR

Usually started by ``scripts/device_check.sh`` (which sets up the Vulkan loader and the wheels on a bare GPU
machine first; see scripts/README.md). Steps, each timed and guarded so that one failure does not stop the rest:

1. environment   Vulkan device, driver, limits, features (fp16, subgroups, cooperative matrices), torch / CUDA
2. kernel_tests  pytest on the kernel-vs-NumPy-reference tests, on the real driver (validation layer on)
3. render        every default scene (app x encoding) in every kernel variant at a fixed view, against the NumPy
                 reference render of the same view: PSNR, share of pixels off by more than 2/255 (FLIP if
                 ``flip_evaluator`` is importable); pass: PSNR >= 40 dB and at most 1% of pixels > 2/255
4. timing        1080p and 4K frames per app (hash grid) and variant: median of N runs after a warm-up, ms and FPS
                 next to the paper's targets
5. breakdown     encoding / MLP / rest of kernels from the unfused pipeline's timestamps, next to the paper's
6. pytorch_peer  the same frames by the PyTorch peer (CUDA when there is one) and the ratio to Vulkan
7. the report, written atomically after every step (a killed run still leaves what it had), printed at the end.

Every Vulkan step runs in a child process of its own (a driver crash or hang costs that step only) with a time
cap derived from the overall budget; the NumPy reference renders run in a pool of processes from the start.
With ``--local`` the same steps run on this machine (lavapipe) at small sizes; ``--quick`` runs a subset.
"""
from __future__ import annotations

import argparse
import datetime
import io
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SCHEMA = 1
APPS = ("gigapixel", "sdf", "volume", "nerf")
ENCODINGS = ("hash", "dense", "lowres")
APP_NAMES = {"gigapixel": "GIA", "sdf": "NSDF", "volume": "NVR", "nerf": "NeRF"}
# The paper's real-time targets (Mubarik et al., ISCA 2023): 4K at 60 FPS for GIA, NSDF and NVR, 4K at 30 FPS for NeRF.
PAPER_TARGET_FPS = {"gigapixel": 60.0, "sdf": 60.0, "volume": 60.0, "nerf": 30.0}
PSNR_MIN_DB = 40.0
MAX_FRACTION_OVER = 0.01   # of pixels whose largest channel difference is more than 2/255
OVER_LSB = 2
STEPS = ("environment", "kernel_tests", "render", "timing", "breakdown", "pytorch_peer")
TITLES = {"environment": "environment", "kernel_tests": "kernel tests", "render": "render vs NumPy reference",
          "timing": "frame timing", "breakdown": "kernel breakdown", "pytorch_peer": "PyTorch peer"}
KERNEL_TEST_FILES = ("tests/test_encoding.py", "tests/test_mlp.py", "tests/test_gigapixel.py",
                     "tests/test_gpu_kernels.py")
# --quick (the end-to-end test's subset): one kernel test per file family; the hash-grid scene of every app, in
# every kernel variant for GIA and in the CPU's own (baked) one for the 3D apps; smaller frames.
QUICK = {"render_size": 48, "frames": [[32, 18], [64, 36]], "frame_labels": ["1080p/60", "4K/60"],
         "timing_repeats": 1, "breakdown_frame": [32, 18], "breakdown_repeats": 1, "peer_frame": [32, 18],
         "variants_3d": ["baked"]}
QUICK_TEST_FILTER = ("test_gpu_encoding_matches_reference and hash or test_gpu_mlp_matches_reference and relu "
                     "or test_fused_render_equals_reference and hash "
                     "or test_shared_fp16_mlp_rounds_as_its_numpy_model and none and float16")
RESERVE_S = 12          # kept back for each later step when a step's cap is set
FINAL_MARGIN_S = 6      # for writing the report at the end

PROFILES = {
    # On the GPU: the sizes the issue asks for; caps sum to more than the budget, the deadline shares it out.
    "gpu": {"render_size": 256, "frames": [[1920, 1080], [3840, 2160]], "frame_labels": ["1080p", "4K"],
            "timing_repeats": 5, "breakdown_frame": [1920, 1080], "breakdown_repeats": 3,
            "peer_frame": [1920, 1080], "peer_repeats": 3,
            "caps": {"environment": 45, "kernel_tests": 120, "render": 170, "timing": 80, "breakdown": 90,
                     "pytorch_peer": 70}},
    # Here on lavapipe: the same steps on small frames (1080p and 4K scaled by 1/30). lavapipe runs the buffered
    # and shared variants of the 3D apps 20-50x slower than baked, and JIT-compiles each pipeline on its first
    # dispatch (tens of seconds for those variants when its cache is cold): a larger budget, 1500 s.
    "local": {"render_size": 64, "frames": [[64, 36], [128, 72]], "frame_labels": ["1080p/30", "4K/30"],
              "timing_repeats": 2, "breakdown_frame": [64, 36], "breakdown_repeats": 2,
              "peer_frame": [64, 36], "peer_repeats": 1,
              "caps": {"environment": 60, "kernel_tests": 300, "render": 900, "timing": 300, "breakdown": 300,
                       "pytorch_peer": 120}},
}


# -- small helpers ---------------------------------------------------------------------------------------------
def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def clean(value):
    """JSON-safe: numpy scalars to Python, NaN/Infinity to None, tuples to lists, Paths to strings."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, TypeError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def write_text_atomic(path: Path, text: str) -> None:
    """ngrender.fileio.write_text (atomic); a plain temp-file-and-rename if ngrender cannot be imported."""
    try:
        from ngrender.fileio import write_text
    except Exception:  # noqa: BLE001 - the report must still be written
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        return
    write_text(path, text)


def write_json_atomic(path: Path, data) -> None:
    write_text_atomic(path, json.dumps(clean(data), indent=2, allow_nan=False) + "\n")


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def error_text(exc: BaseException) -> str:
    """The exception's one line plus the innermost frames (enough to find the line on a machine we cannot see)."""
    tail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-4:])
    return f"{type(exc).__name__}: {exc}\n{tail[-1500:]}"


def fmt(value, spec: str = ".1f", none: str = "-") -> str:
    if value is None:
        return none
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def scene_list(quick: bool) -> list[dict]:
    """The default scenes: every app x encoding (``--quick``: the hash-grid scene of every app)."""
    from ngrender.scene import scene_for

    out = []
    for app in APPS:
        for encoding in ENCODINGS:
            if quick and encoding != "hash":
                continue
            path = scene_for(app, encoding)
            out.append({"app": app, "encoding": encoding, "path": str(path), "name": path.stem})
    return out


def variant_list() -> list[str]:
    from ngrender.apps.views import VARIANTS

    return [v for v in VARIANTS if v != "auto"]


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def passed(self, keep: float = 0.0) -> bool:
        return self.left() <= keep


# -- child side: one step in its own process ---------------------------------------------------------------------
class StepRecorder:
    """What a child step has so far, written (atomically) after every item so a killed child leaves it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.result: dict = {}
        self.notes: list[str] = []
        self.status = "running"

    def save(self) -> None:
        write_json_atomic(self.path, {"status": self.status, "result": self.result, "notes": self.notes})


def lacks_float16(variant: str, exc: BaseException) -> bool:
    """The shared-fp16 variant refused by a device without shaderFloat16: left out of the report, not a failure."""
    return variant == "shared-fp16" and "no shaderFloat16" in str(exc)


def open_scene_session(path, variant="auto", pipeline="fused"):
    from ngrender.session import RenderSession

    return RenderSession.from_scene(path, variant=variant, validation=False, pipeline=pipeline)


def headless_view(scene):
    """The view ``RenderSession.view()`` makes from a scene, without a Vulkan device: App.make_view only reads
    class attributes (the view class, modes, rules)."""
    from ngrender.apps.gigapixel import GigapixelApp
    from ngrender.apps.nerf import NerfApp
    from ngrender.apps.sdf import SdfApp
    from ngrender.apps.volume import VolumeApp

    cls = {"gigapixel": GigapixelApp, "sdf": SdfApp, "volume": VolumeApp, "nerf": NerfApp}[scene.app]
    return cls.make_view(object.__new__(cls), dict(scene.view))


def reference_image(scene_path: str, size: int):
    """(uint8 image, repr of the view) of the NumPy reference render of a scene's view at size x size."""
    from ngrender.bench import reference_renderer
    from ngrender.model import load_model
    from ngrender.scene import load_scene

    scene = load_scene(scene_path)
    view = headless_view(scene)
    model = load_model(scene.model_path)
    image = reference_renderer(scene.app, model, view)(size, size)[0]
    return image, repr(view)


def save_reference(path: Path, image, view_repr: str) -> None:
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, image=image, view=np.array(view_repr))
    from ngrender.fileio import write_bytes
    write_bytes(path, buf.getvalue())


def load_reference(path: Path):
    import numpy as np

    with np.load(path) as data:
        return data["image"], str(data["view"])


def _reference_job(scene_path: str, size: int, out: str) -> tuple[str, float]:
    start = time.perf_counter()
    image, view = reference_image(scene_path, size)
    save_reference(Path(out), image, view)
    return out, time.perf_counter() - start


def child_refs(cfg: dict, rec: StepRecorder, deadline: Deadline) -> None:
    """NumPy reference renders of every scene, in a pool of processes (one thread each), slowest apps first."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    work = Path(cfg["work"])
    size = cfg["render_size"]
    slow_first = {"nerf": 0, "volume": 1, "sdf": 2, "gigapixel": 3}
    scenes = sorted(cfg["scenes"], key=lambda s: (slow_first[s["app"]], s["encoding"]))
    workers = max(1, min(len(scenes), (os.cpu_count() or 2) - 1))
    rec.result = {"workers": workers, "size": size, "scenes": {}}
    rec.save()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"  # the pool's processes share the cores; inherited by the spawned workers
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_reference_job, s["path"], size, str(work / f"ref_{s['name']}.npz")): s
                   for s in scenes}
        for future in as_completed(futures):
            scene = futures[future]
            try:
                _, seconds = future.result()
                rec.result["scenes"][scene["name"]] = {"seconds": round(seconds, 2), "error": None}
            except Exception as exc:  # noqa: BLE001
                rec.result["scenes"][scene["name"]] = {"seconds": None, "error": error_text(exc)}
            rec.save()
    rec.status = "ok"


def compare_images(got, want) -> dict:
    import numpy as np
    from ngrender.reference.output import psnr_db

    a, b = got.astype(np.float64), want.astype(np.float64)
    mse = float(np.mean((a - b) ** 2))
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16)).max(axis=2)
    out = {"psnr_db": psnr_db(mse, 255.0),
           "frac_over_2": float((diff > OVER_LSB).mean()), "max_abs": int(diff.max()), "mse": mse,
           "reference_std": float(want.std()), "flip": None}
    try:
        import flip_evaluator as flip
        out["flip"] = float(flip.evaluate(want.astype(np.float32) / 255, got.astype(np.float32) / 255, "LDR", applyMagma=False)[1])
    except ImportError:
        pass
    except Exception as exc:  # noqa: BLE001 - optional metric
        out["flip_error"] = str(exc)[:200]
    out["pass"] = out["psnr_db"] >= PSNR_MIN_DB and out["frac_over_2"] <= MAX_FRACTION_OVER
    return out


def save_failure_images(report_dir: Path, name: str, got, want) -> list[str]:
    import numpy as np
    from ngrender.pngio import write_png

    folder = report_dir / "images"
    folder.mkdir(exist_ok=True)
    diff = np.clip(np.abs(got.astype(np.int16) - want.astype(np.int16)) * 16, 0, 255).astype(np.uint8)
    paths = []
    for kind, image in (("vulkan", got), ("reference", want), ("diff16x", diff)):
        path = folder / f"{name}_{kind}.png"
        write_png(path, np.ascontiguousarray(image))
        paths.append(str(path.relative_to(report_dir)))
    return paths


def child_render(cfg: dict, rec: StepRecorder, deadline: Deadline) -> None:
    """Every scene in every variant at size x size against the reference images of the refs process (made here
    when that process is gone or failed). Each scene is compared as soon as its reference is there; renders stop
    early enough to leave time for the comparisons."""
    work, size = Path(cfg["work"]), cfg["render_size"]
    report_dir = Path(cfg["report_dir"])
    rows: list[dict] = []
    rec.result = {"size": [size, size], "bounds": {"psnr_db_min": PSNR_MIN_DB, "max_frac_over_2": MAX_FRACTION_OVER},
                  "camera": "each scene's own view (scenes/*.json), fixed", "rows": rows}
    images: dict = {}
    saved = [0]
    keep = max(8.0, 0.08 * cfg["child_deadline_s"]["render"])  # left for the comparisons when renders stop

    def reference(scene, wait: bool):
        """(image or None, final): final False means 'not there yet, ask again'."""
        path = work / f"ref_{scene['name']}.npz"
        view = images[(scene["name"], next(v for v in cfg["variants_by_app"][scene["app"]]
                                           if (scene["name"], v) in images))][1]
        while True:
            if path.exists():
                want, ref_view = load_reference(path)
                if ref_view == view:
                    return want, True
                rec.notes.append(f"{scene['name']}: the reference process's view differed; rendered here")
                break
            if not _alive(cfg.get("refs_pid")) or _ref_failed(work, scene["name"]):
                break
            if not wait:
                return None, False
            if deadline.passed(keep=3):
                return None, True
            time.sleep(0.25)
        if deadline.passed(keep=5):
            return None, True
        start = time.perf_counter()
        want, _ = reference_image(scene["path"], size)
        rec.notes.append(f"{scene['name']}: reference rendered in the render step ({time.perf_counter() - start:.1f} s)")
        return want, True

    def compare(scene, wait: bool) -> bool:
        mine = [r for r in rows if r["scene"] == scene["name"] and (scene["name"], r["variant"]) in images]
        if not mine:
            return True
        try:
            want, final = reference(scene, wait)
        except Exception as exc:  # noqa: BLE001
            for r in mine:
                r["error"] = "reference render failed: " + error_text(exc)
            return True
        if not final:
            return False
        for r in mine:
            if want is None:
                r["error"] = "not compared: no reference image before the step deadline"
                continue
            got = images[(scene["name"], r["variant"])][0]
            r.update(compare_images(got, want))
            if not r["pass"] and saved[0] < 12:
                try:
                    r["images"] = save_failure_images(report_dir, f"{scene['name']}_{r['variant']}", got, want)
                    saved[0] += 1
                except Exception as exc:  # noqa: BLE001
                    r["images_error"] = str(exc)[:200]
        rec.save()
        return True

    pending = []
    for scene in cfg["scenes"]:
        for variant in cfg["variants_by_app"][scene["app"]]:
            row = {"scene": scene["name"], "app": scene["app"], "encoding": scene["encoding"], "variant": variant,
                   "pass": False, "error": None}
            rows.append(row)
            if deadline.passed(keep=keep):
                row["error"] = "skipped: step deadline"
                continue
            try:
                start = time.perf_counter()
                with open_scene_session(scene["path"], variant) as session:
                    row["device_variant"] = session.app.variant
                    view = session.view()
                    image, stats = session.renderer.render(size, size, view)
                    row["first_frame_s"] = round(time.perf_counter() - start, 3)  # with shader compile
                    row["gpu_ms"] = stats.gpu_ms
                images[(scene["name"], variant)] = (image, repr(view))
            except Exception as exc:  # noqa: BLE001
                if lacks_float16(variant, exc):
                    rows.remove(row)
                    rec.notes.append(f"{scene['name']}: shared-fp16 left out ({error_text(exc)})")
                    continue
                row["error"] = error_text(exc)
            rec.save()
        pending = [s for s in pending + [scene] if not compare(s, wait=False)]
    for scene in pending:
        compare(scene, wait=True)
    rec.result["passed"] = sum(1 for r in rows if r["pass"])
    rec.result["total"] = len(rows)
    rec.result["compared"] = sum(1 for r in rows if "frac_over_2" in r)
    rec.status = "ok" if rec.result["passed"] == len(rows) else "fail"


def _alive(pid) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie (exited, not yet reaped by the orchestrator) is gone too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _ref_failed(work: Path, name: str) -> bool:
    data = read_json(work / "refs.json") or {}
    entry = (data.get("result") or {}).get("scenes", {}).get(name)
    return bool(entry and entry.get("error"))


def frame_stats(session, width: int, height: int, repeats: int, view=None) -> dict:
    """Warm-up, then the median of ``repeats`` frames: wall ms (with the read-back) and GPU ms (timestamps)."""
    view = view or session.view()
    session.renderer.render(width, height, view)
    runs = [session.renderer.render(width, height, view)[1] for _ in range(repeats)]
    wall = [r.wall_ms for r in runs]
    gpu = [r.gpu_ms for r in runs]
    return {"wall_ms": statistics.median(wall), "gpu_ms": statistics.median(gpu) if min(gpu) > 0 else None,
            "wall_runs_ms": [round(w, 3) for w in wall], "gpu_runs_ms": [round(g, 3) for g in gpu],
            "tiles": runs[-1].tiles, "samples": runs[-1].samples, "runs": repeats}


def child_timing(cfg: dict, rec: StepRecorder, deadline: Deadline) -> None:
    from ngrender.scene import scene_for

    rows: list[dict] = []
    rec.result = {"repeats": cfg["timing_repeats"], "frames": cfg["frames"], "frame_labels": cfg["frame_labels"],
                  "encoding": "hash", "paper_target_fps_4k": PAPER_TARGET_FPS,
                  "fps_basis": "GPU time (timestamps of the frame's dispatches); wall time includes the read-back",
                  "rows": rows}
    for app in APPS:
        for variant in cfg["variants_by_app"][app]:
            if deadline.passed(keep=3):
                rows.append({"app": app, "variant": variant, "error": "skipped: step deadline"})
                continue
            try:
                with open_scene_session(scene_for(app, "hash"), variant) as session:
                    for (w, h), label in zip(cfg["frames"], cfg["frame_labels"]):
                        row = {"app": app, "variant": session.app.variant, "frame": [w, h], "label": label,
                               "error": None}
                        rows.append(row)
                        if deadline.passed(keep=3):
                            row["error"] = "skipped: step deadline"
                            continue
                        row.update(frame_stats(session, w, h, cfg["timing_repeats"]))
                        row["fps_wall"] = 1e3 / row["wall_ms"]
                        row["fps_gpu"] = 1e3 / row["gpu_ms"] if row["gpu_ms"] else None
                        row["target_fps"] = PAPER_TARGET_FPS[app]
                        row["meets_target"] = (row["fps_gpu"] or 0) >= PAPER_TARGET_FPS[app]
                        rec.save()
            except Exception as exc:  # noqa: BLE001
                if lacks_float16(variant, exc):
                    rec.notes.append(f"{app}: shared-fp16 left out ({error_text(exc)})")
                    continue
                rows.append({"app": app, "variant": variant, "error": error_text(exc)})
            rec.save()
    rec.status = "ok" if all(not r.get("error") for r in rows) else "partial"


def child_breakdown(cfg: dict, rec: StepRecorder, deadline: Deadline) -> None:
    """ngrender.reports.breakdown.measure's numbers on a width x height frame: per pipeline (fused, unfused, fused-rest)
    the median of the class times (encoding, mlp, rest) from timestamps."""
    from ngrender.reports import breakdown as bd
    from ngrender.scene import scene_for

    w, h = cfg["breakdown_frame"]
    repeats = cfg["breakdown_repeats"]
    pipelines = getattr(bd, "PIPELINES", ("fused", "unfused", "fused-rest"))
    rows: list[dict] = []
    rec.result = {"frame": [w, h], "repeats": repeats, "variant": "auto",
                  "paper": {"encoding_mlp_pct": getattr(bd, "PAPER_ENCODING_MLP_PCT", None),
                            "hash_split_pct": getattr(bd, "PAPER_HASH_SPLIT_PCT", None),
                            "rest_fusion_speedup": getattr(bd, "PAPER_REST_FUSION", None),
                            "device": "RTX 3090 (instant-ngp), Figure 5"},
                  "rows": rows}
    encodings = ["hash"] if cfg["quick"] else list(ENCODINGS)
    for encoding in encodings:  # every app's hash grid first: the paper's main case
        for app in APPS:
            row = {"app": app, "encoding": encoding, "frame": [w, h], "error": None}
            rows.append(row)
            if deadline.passed(keep=3):
                row["error"] = "skipped: step deadline"
                continue
            try:
                for pipeline in pipelines:
                    with open_scene_session(scene_for(app, encoding), "auto", pipeline) as session:
                        view = session.view()
                        session.renderer.render(w, h, view)
                        runs = [session.renderer.render(w, h, view)[1] for _ in range(repeats)]
                        classes = {c: statistics.median(r.class_ms()[c] for r in runs)
                                   for c in ("encoding", "mlp", "rest", "fused")}
                        row[pipeline] = {"gpu_ms": statistics.median(r.gpu_ms for r in runs),
                                         "wall_ms": statistics.median(r.wall_ms for r in runs),
                                         "class_ms": classes, "dispatches": len(runs[-1].dispatches),
                                         "variant": session.app.variant}
                unfused, rest_fused, fused = row["unfused"], row["fused-rest"], row["fused"]
                total = sum(unfused["class_ms"][c] for c in ("encoding", "mlp", "rest"))
                row["pct"] = {c: 100 * unfused["class_ms"][c] / total if total else None
                              for c in ("encoding", "mlp", "rest")}
                row["encoding_mlp_pct"] = (row["pct"]["encoding"] + row["pct"]["mlp"]) if total else None
                row["fused_speedup"] = unfused["gpu_ms"] / fused["gpu_ms"] if fused["gpu_ms"] else None
                row["rest_fusion_speedup"] = (unfused["class_ms"]["rest"] / rest_fused["class_ms"]["rest"]
                                              if rest_fused["class_ms"]["rest"] else None)
                row["paper_encoding_mlp_pct"] = (getattr(bd, "PAPER_ENCODING_MLP_PCT", {}) or {}).get(encoding)
            except Exception as exc:  # noqa: BLE001
                row["error"] = error_text(exc)
            rec.save()
    rec.status = "ok" if all(not r.get("error") for r in rows) else "partial"


def child_peer(cfg: dict, rec: StepRecorder, deadline: Deadline) -> None:
    """The PyTorch peer (bench.py's: encoding + MLPs in PyTorch, the per-ray marching bookkeeping the NumPy
    reference's) on the same frame as Vulkan; on CUDA when torch has it. A frame whose estimated peer time does
    not fit the time left is halved (both engines then time the smaller frame)."""
    import numpy as np
    try:
        import torch
        from ngrender.train import torch_field
    except ImportError as exc:
        rec.status = "skipped"
        rec.notes.append(f"skipped: the PyTorch peer needs torch ({type(exc).__name__}: {exc})")
        return
    from ngrender.bench import reference_renderer
    from ngrender.scene import scene_for

    torch_device = "cuda" if torch.cuda.is_available() and not cfg["local"] else "cpu"
    rows: list[dict] = []
    rec.result = {"frame": cfg["peer_frame"], "torch": torch.__version__, "torch_device": torch_device,
                  "note": "PyTorch evaluates the encoding and the MLPs; the per-ray marching bookkeeping is the NumPy "
                          "reference's (CPU), as in `ngrender bench`",
                  "rows": rows}
    if torch_device == "cuda":
        rec.result["cuda_device"] = torch.cuda.get_device_name(0)

    def peer_for(model, app):
        make = torch_field.torch_radiance if app == "nerf" else torch_field.torch_network
        try:
            return make(model, device=torch_device)
        except TypeError:  # an older torch_field without the device argument: CPU only
            rec.notes.append("torch_field has no device argument: the peer ran on the CPU")
            return make(model)

    for index, app in enumerate(APPS):
        row = {"app": app, "error": None}
        rows.append(row)
        if deadline.passed(keep=3):
            row["error"] = "skipped: step deadline"
            continue
        try:
            with open_scene_session(scene_for(app, "hash"), "auto") as session:
                view, model = session.view(), session.model
                row["variant"] = session.app.variant
                peer = reference_renderer(app, model, view, peer_for(model, app))
                w, h = cfg["peer_frame"]
                # warm-up (CUDA context, kernels) on a 1/8 frame, timed to estimate the full one
                sw, sh = max(8, w // 8), max(8, h // 8)
                peer(sw, sh)
                start = time.perf_counter()
                peer(sw, sh)
                small_s = time.perf_counter() - start
                share = deadline.left() / max(1, len(APPS) - index) - 2
                while w * h > 32 * 32 and small_s * (w * h) / (sw * sh) * 1.3 > share:
                    w, h = w // 2, h // 2
                row["frame"] = [w, h]
                if [w, h] != cfg["peer_frame"]:
                    row["reduced"] = f"frame halved to {w}x{h} to fit the time left"
                vk = frame_stats(session, w, h, cfg["peer_repeats"], view)
                vk_image = session.renderer.render(w, h, view)[0]
                times = []
                image = None
                for _ in range(cfg["peer_repeats"]):
                    start = time.perf_counter()
                    image = peer(w, h)[0]
                    times.append((time.perf_counter() - start) * 1e3)
                    if deadline.passed(keep=3):
                        break
                row["vulkan_wall_ms"], row["vulkan_gpu_ms"] = vk["wall_ms"], vk["gpu_ms"]
                row["pytorch_ms"] = statistics.median(times)
                row["pytorch_runs"] = len(times)
                row["pytorch_over_vulkan"] = row["pytorch_ms"] / vk["wall_ms"]  # Vulkan's speed-up
                row["vulkan_over_pytorch"] = vk["wall_ms"] / row["pytorch_ms"]
                diff = np.abs(vk_image.astype(np.int16) - image.astype(np.int16)).max(axis=2)
                row["image_frac_over_2"] = float((diff > OVER_LSB).mean())
        except Exception as exc:  # noqa: BLE001
            row["error"] = error_text(exc)
        rec.save()
    rec.status = "ok" if all(not r.get("error") for r in rows) else "partial"


def child_environment(cfg: dict, rec: StepRecorder, deadline: Deadline) -> None:
    """`ngrender info`'s facts and more: every Vulkan device, the chosen one's limits, features, extensions."""
    res = rec.result
    res["python"] = sys.version.split()[0]
    res["platform"] = platform.platform()
    res["cpu_count"] = os.cpu_count()
    res["env"] = {k: v for k, v in os.environ.items()
                  if k.startswith(("VK_", "NGRENDER_")) or k in ("LD_LIBRARY_PATH", "PYTHONPATH")}
    import numpy
    res["numpy"] = numpy.__version__
    rec.save()
    try:
        from ngrender import shaders
        res["glsl_compiler"] = shaders.compiler().version
    except Exception as exc:  # noqa: BLE001
        res["glsl_compiler_error"] = error_text(exc)
    _torch_facts(res)
    rec.save()
    from ngrender.vk.device import Device, list_devices
    res["vulkan_devices"] = [str(d) for d in list_devices()]
    with Device(None, validation=False) as device:
        vk = device.vk
        info = device.info
        res["device"] = {"name": info.name, "type": info.type, "api_version": info.api_version,
                         "driver": info.driver, "vendor_id": f"0x{device.properties.vendorID:04x}", "is_cpu": info.is_cpu}
        lim = device.limits
        res["limits"] = {name: int(getattr(lim, name)) for name in (
            "maxComputeSharedMemorySize", "maxComputeWorkGroupInvocations", "maxStorageBufferRange",
            "maxUniformBufferRange", "maxTexelBufferElements", "maxPushConstantsSize",
            "maxBoundDescriptorSets")}
        res["limits"]["maxComputeWorkGroupCount"] = [int(x) for x in lim.maxComputeWorkGroupCount]
        res["limits"]["maxComputeWorkGroupSize"] = [int(x) for x in lim.maxComputeWorkGroupSize]
        res["timestamps"] = {"supported": device.timestamps_supported, "period_ns": device.timestamp_period_ns}
        res["queue_family"] = device.queue_family
        heaps = device.memory_properties
        res["device_local_heap_gib"] = round(max(
            (heaps.memoryHeaps[i].size for i in range(heaps.memoryHeapCount)
             if heaps.memoryHeaps[i].flags & vk.VK_MEMORY_HEAP_DEVICE_LOCAL_BIT), default=0) / 2 ** 30, 2)
        try:
            from ngrender.apps.base import workgroup_shape
            res["float16_arithmetic"] = device.float16_arithmetic  # shaderFloat16 enabled: shared-fp16 runs
            res["subgroup_size_control"] = device.subgroup_size_control
            res["fused_workgroup"] = list(workgroup_shape(info, device.subgroup_size,
                                                          int(lim.maxComputeWorkGroupInvocations)))
        except Exception as exc:  # noqa: BLE001
            res["float16_arithmetic"] = f"? ({exc})"
        try:
            from ngrender.apps.field import choose_variant
            res["auto_variant"] = choose_variant(device, "auto", 16 * 1024)  # for a network of 16 KiB
        except Exception as exc:  # noqa: BLE001
            res["auto_variant"] = f"? ({exc})"
        exts = sorted(vk.ffi.string(e.extensionName).decode() if not isinstance(e.extensionName, str)
                      else e.extensionName for e in vk.vkEnumerateDeviceExtensionProperties(device.physical, None))
        res["extension_count"] = len(exts)
        res["extensions_of_interest"] = {name: name in exts for name in (
            "VK_KHR_cooperative_matrix", "VK_NV_cooperative_matrix", "VK_NV_cooperative_matrix2",
            "VK_KHR_shader_float16_int8", "VK_KHR_16bit_storage", "VK_EXT_subgroup_size_control",
            "VK_KHR_shader_integer_dot_product", "VK_EXT_shader_atomic_float", "VK_KHR_shader_subgroup_extended_types",
            "VK_NV_shader_subgroup_partitioned")}
        res["features"] = _features(vk, device)
        try:
            layers = sorted(p.layerName for p in vk.vkEnumerateInstanceLayerProperties())
            res["instance_layers"] = layers
            res["validation_layer"] = "VK_LAYER_KHRONOS_validation" in layers
        except Exception as exc:  # noqa: BLE001
            res["instance_layers_error"] = str(exc)
    rec.status = "ok"


def _features(vk, device) -> dict:
    out: dict = {}
    try:
        f16 = vk.VkPhysicalDeviceShaderFloat16Int8Features()
        s16 = vk.VkPhysicalDevice16BitStorageFeatures(pNext=f16)
        feats = vk.VkPhysicalDeviceFeatures2(pNext=s16)
        vk.vkGetPhysicalDeviceFeatures2(device.physical, feats)
        out["shaderFloat16"] = bool(f16.shaderFloat16)
        out["shaderInt8"] = bool(f16.shaderInt8)
        out["storageBuffer16BitAccess"] = bool(s16.storageBuffer16BitAccess)
        out["uniformAndStorageBuffer16BitAccess"] = bool(s16.uniformAndStorageBuffer16BitAccess)
        out["shaderInt64"] = bool(feats.features.shaderInt64)
        out["shaderFloat64"] = bool(feats.features.shaderFloat64)
    except Exception as exc:  # noqa: BLE001
        out["features_error"] = str(exc)[:300]
    try:
        sub = vk.VkPhysicalDeviceSubgroupProperties()
        vk.vkGetPhysicalDeviceProperties2(device.physical, vk.VkPhysicalDeviceProperties2(pNext=sub))
        out["subgroupSize"] = int(sub.subgroupSize)
        ops = {"basic": vk.VK_SUBGROUP_FEATURE_BASIC_BIT, "vote": vk.VK_SUBGROUP_FEATURE_VOTE_BIT,
               "arithmetic": vk.VK_SUBGROUP_FEATURE_ARITHMETIC_BIT, "ballot": vk.VK_SUBGROUP_FEATURE_BALLOT_BIT,
               "shuffle": vk.VK_SUBGROUP_FEATURE_SHUFFLE_BIT, "clustered": vk.VK_SUBGROUP_FEATURE_CLUSTERED_BIT,
               "quad": vk.VK_SUBGROUP_FEATURE_QUAD_BIT}
        out["subgroupOperations"] = [k for k, bit in ops.items() if sub.supportedOperations & bit]
        out["subgroupInCompute"] = bool(sub.supportedStages & vk.VK_SHADER_STAGE_COMPUTE_BIT)
    except Exception as exc:  # noqa: BLE001
        out["subgroup_error"] = str(exc)[:300]
    for struct in ("VkPhysicalDeviceSubgroupSizeControlProperties", "VkPhysicalDeviceSubgroupSizeControlPropertiesEXT"):
        try:
            ctl = getattr(vk, struct)()
            vk.vkGetPhysicalDeviceProperties2(device.physical, vk.VkPhysicalDeviceProperties2(pNext=ctl))
            if ctl.maxSubgroupSize:
                out["subgroupSizeRange"] = [int(ctl.minSubgroupSize), int(ctl.maxSubgroupSize)]
                break
        except Exception:  # noqa: BLE001 - not on every driver or binding
            continue
    return out


def _torch_facts(res: dict) -> None:
    try:
        import torch
    except Exception as exc:  # noqa: BLE001
        res["torch"] = None
        res["torch_error"] = str(exc)[:300]
        return
    res["torch"] = torch.__version__
    res["torch_cuda_build"] = torch.version.cuda
    try:
        res["cuda_available"] = torch.cuda.is_available()
        if res["cuda_available"]:
            props = torch.cuda.get_device_properties(0)
            res["cuda_device"] = {"name": props.name, "count": torch.cuda.device_count(),
                                  "memory_gib": round(props.total_memory / 2 ** 30, 1),
                                  "capability": f"{props.major}.{props.minor}",
                                  "multiprocessors": props.multi_processor_count}
    except Exception as exc:  # noqa: BLE001
        res["cuda_error"] = str(exc)[:300]


CHILDREN = {"refs": child_refs, "environment": child_environment, "render": child_render, "timing": child_timing,
            "breakdown": child_breakdown, "pytorch_peer": child_peer}


def run_child(step: str, config_path: Path) -> int:
    cfg = json.loads(config_path.read_text())
    rec = StepRecorder(Path(cfg["work"]) / f"{step}.json")
    deadline = Deadline(cfg["child_deadline_s"][step])
    try:
        rec.save()
        CHILDREN[step](cfg, rec, deadline)
    except BaseException as exc:  # noqa: BLE001 - recorded, then the orchestrator decides
        rec.status = "error"
        rec.notes.append(error_text(exc))
    rec.save()
    return 0


# -- orchestrator ----------------------------------------------------------------------------------------------
class Terminated(Exception):
    pass


def _on_signal(signum, frame):  # noqa: ARG001
    raise Terminated(f"signal {signum}")


class Check:
    def __init__(self, args) -> None:
        self.args = args
        self.report_dir = Path(args.report_dir).resolve()
        self.report_dir.mkdir(parents=True, exist_ok=True)
        self.work = self.report_dir / "work"
        self.logs = self.report_dir / "logs"
        self.work.mkdir(exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        for stale in list(self.work.glob("*.json")) + list(self.work.glob("ref_*.npz")):
            stale.unlink()
        self.t0 = time.monotonic()
        self.deadline = Deadline(args.budget)
        self.mode = "local" if args.local else "gpu"
        profile = PROFILES[self.mode]
        self.cfg = {k: v for k, v in profile.items() if k != "caps"}
        self.caps = dict(profile["caps"])
        if args.quick:
            self.cfg.update({k: v for k, v in QUICK.items() if k != "variants_3d"})
        self.cfg.update({"local": args.local, "quick": args.quick, "work": str(self.work),
                         "report_dir": str(self.report_dir), "child_deadline_s": {}})
        self.refs_proc = None
        self.work_error = None
        self.procs: list[subprocess.Popen] = []
        self.report = {"schema": SCHEMA, "tool": "ngrender device check", "mode": self.mode, "quick": args.quick,
                       "started": now_iso(), "finished": None, "total_s": None, "budget_s": args.budget,
                       "config": {k: v for k, v in self.cfg.items() if k not in ("work", "report_dir",
                                                                                  "child_deadline_s")},
                       "bounds": {"psnr_db_min": PSNR_MIN_DB, "max_frac_over_2": MAX_FRACTION_OVER,
                                  "over": f"{OVER_LSB}/255 in the largest channel difference"},
                       "paper_targets": {"fps_4k": PAPER_TARGET_FPS,
                                         "source": "Mubarik et al., Hardware Acceleration of Neural Graphics, "
                                                   "ISCA 2023: 4K at 60 FPS (GIA, NSDF, NVR), 30 FPS (NeRF)"},
                       "setup": self._setup_notes(),
                       "steps": {s: {"number": i + 1, "title": TITLES[s], "status": "not run", "seconds": None,
                                     "error": None, "result": None} for i, s in enumerate(STEPS)},
                       "complete": False}

    def _setup_notes(self) -> list[str]:
        path = self.report_dir / "setup.log"
        try:
            return path.read_text(errors="replace").splitlines()[-40:]
        except OSError:
            return []

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def cap_for(self, step: str) -> float:
        later = len(STEPS) - 1 - STEPS.index(step)
        return min(self.caps[step], self.deadline.left() - FINAL_MARGIN_S - RESERVE_S * later)

    def save(self) -> None:
        self.report["total_s"] = round(self.elapsed(), 1)
        try:
            write_json_atomic(self.report_dir / "device_check.json", self.report)
        except Exception as exc:  # noqa: BLE001 - keep going: the next save may succeed
            print(f"device_check: cannot write the JSON report: {error_text(exc)}", file=sys.stderr, flush=True)
        try:
            write_text_atomic(self.report_dir / "device_check.md", markdown(self.report))
        except Exception as exc:  # noqa: BLE001
            print(f"device_check: cannot write the Markdown report: {error_text(exc)}", file=sys.stderr, flush=True)

    # children
    def spawn(self, step: str, cap: float) -> subprocess.Popen:
        self.cfg["child_deadline_s"][step] = max(1.0, cap - 4)
        config_path = self.work / f"config_{step}.json"
        write_json_atomic(config_path, self.cfg)
        log = open(self.logs / f"{step}.log", "w")
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", step, "--config",
                                 str(config_path)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen | None) -> None:
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the child's own process group (its pool too)
        except OSError:
            proc.kill()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def run_step(self, step: str) -> None:
        entry = self.report["steps"][step]
        cap = self.cap_for(step)
        if cap < 8:
            entry.update(status="skipped", error=f"skipped: {max(0, self.deadline.left()):.0f} s left of the "
                                                 f"{self.args.budget:.0f} s budget")
            self.save()
            return
        entry["status"] = "running"
        entry["cap_s"] = round(cap, 1)
        self.save()
        print(f"[{self.elapsed():6.1f} s] step {entry['number']} {TITLES[step]} (cap {cap:.0f} s) ...", flush=True)
        start = time.monotonic()
        try:
            if step == "kernel_tests":
                self.kernel_tests(entry, cap)
            else:
                self.child_step(step, entry, cap)
        except Terminated:
            raise
        except Exception as exc:  # noqa: BLE001
            entry.update(status="error", error=error_text(exc))
        entry["seconds"] = round(time.monotonic() - start, 2)
        print(f"[{self.elapsed():6.1f} s]   -> {entry['status']} in {entry['seconds']:.1f} s"
              + (f": {entry['error'].splitlines()[0]}" if entry.get("error") else ""), flush=True)
        self.save()

    def child_step(self, step: str, entry: dict, cap: float) -> None:
        if step == "render":
            self.cfg["refs_pid"] = self.refs_proc.pid if self.refs_proc else None
        proc = self.spawn(step, cap)
        try:
            proc.wait(timeout=cap)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            self.kill(proc)
        data = read_json(self.work / f"{step}.json") or {}
        entry["result"] = data.get("result")
        notes = data.get("notes") or []
        status = data.get("status", "error")
        if timed_out:
            entry["status"] = "timeout"
            entry["error"] = f"killed after its {cap:.0f} s cap; partial results kept"
        elif proc.returncode != 0 or status == "running":
            entry["status"] = "error"
            entry["error"] = (f"child exited with status {proc.returncode} (a crash in the driver?); "
                              f"last log lines:\n{self._log_tail(step)}")
        else:
            entry["status"] = status
            if status in ("error", "skipped"):
                entry["error"] = notes[-1] if notes else "error"
                notes = notes[:-1]
        if notes:
            entry["notes"] = notes
        if step == "render" and self.refs_proc is not None:
            refs = read_json(self.work / "refs.json") or {}
            entry["reference_renders"] = refs.get("result")
            self.kill(self.refs_proc)

    def _log_tail(self, step: str, chars: int = 1500) -> str:
        try:
            return (self.logs / f"{step}.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def kernel_tests(self, entry: dict, cap: float) -> None:
        import importlib.util

        files = [f for f in KERNEL_TEST_FILES if (ROOT / f).is_file()]
        result = {"files": files, "missing": [f for f in KERNEL_TEST_FILES if f not in files]}
        entry["result"] = result
        if importlib.util.find_spec("pytest") is None:
            entry.update(status="skipped", error="skipped: pytest is not importable here")
            return
        if not files:
            entry.update(status="skipped", error="skipped: none of the kernel test files exists")
            return
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *files]
        if self.args.quick:
            cmd += ["-k", QUICK_TEST_FILTER]
        result["command"] = " ".join(["python"] + cmd[1:])
        log_path = self.logs / "kernel_tests.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
            self.procs.append(proc)
            try:
                proc.wait(timeout=cap)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
                self.kill(proc)
        output = log_path.read_text(errors="replace")
        result["returncode"] = proc.returncode
        result["counts"] = {k: int(n) for n, k in re.findall(
            r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)", output.splitlines()[-1]
            if output.strip() else "")}
        result["output_tail"] = output[-2500:]
        failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", output, re.M)
        result["failed_tests"] = failed[:20]
        if timed_out:
            done = sum(len(line.split()[0]) for line in output.splitlines() if re.match(r"^[.sxXFE]+(\s|$)", line))
            entry.update(status="timeout", error=f"pytest killed after its {cap:.0f} s cap ({done} tests done)")
        elif proc.returncode == 0:
            entry["status"] = "ok"
        elif proc.returncode == 1:
            entry.update(status="fail", error="tests failed: " + ", ".join(failed[:5]))
        else:
            entry.update(status="error", error=f"pytest exited with {proc.returncode}")

    def list_work(self) -> bool:
        try:
            self.cfg["scenes"] = scene_list(self.args.quick)
            self.cfg["variants"] = variant_list()
            quick_3d = [v for v in QUICK["variants_3d"] if v in self.cfg["variants"]] or self.cfg["variants"][:1]
            self.cfg["variants_by_app"] = {app: self.cfg["variants"] if app == "gigapixel" or not self.args.quick
                                           else quick_3d for app in APPS}
        except Exception as exc:  # noqa: BLE001 - e.g. ngrender or its dependencies not importable
            self.work_error = f"cannot list the scenes or kernel variants: {error_text(exc)}"
            return False
        self.report["config"]["scenes"] = [s["name"] for s in self.cfg["scenes"]]
        self.report["config"]["variants"] = self.cfg["variants_by_app"]
        return True

    def start_refs(self) -> None:
        """The NumPy reference renders of step 3 start now, in the background (CPU only, no Vulkan)."""
        cap = self.deadline.left() - FINAL_MARGIN_S - RESERVE_S * 3
        if cap >= 20:
            self.refs_proc = self.spawn("refs", cap)

    def run(self) -> int:
        self.save()
        print(f"ngrender device check ({self.mode}{', quick' if self.args.quick else ''}), budget "
              f"{self.args.budget:.0f} s, report in {self.report_dir}", flush=True)
        try:
            if self.list_work():
                self.start_refs()
            for step in STEPS:
                if step in ("render", "timing", "breakdown", "pytorch_peer") and "variants" not in self.cfg:
                    self.report["steps"][step].update(status="error", error=self.work_error)
                    continue
                self.run_step(step)
            self.report["complete"] = True
        except (Terminated, KeyboardInterrupt) as exc:
            self.report["interrupted"] = f"stopped by {exc or 'interrupt'} after {self.elapsed():.0f} s"
            for step, entry in self.report["steps"].items():
                if entry["status"] == "running":
                    entry["status"] = "interrupted"
                    partial = read_json(self.work / f"{step}.json") or {}
                    if partial.get("result") and not entry.get("result"):
                        entry["result"] = partial["result"]
        finally:
            for proc in self.procs:
                self.kill(proc)
            self.report["finished"] = now_iso()
            self.save()
        print()
        print(markdown(self.report))
        return 0


# -- the Markdown report ---------------------------------------------------------------------------------------
def _status_note(step: str, entry: dict) -> str:
    res = entry.get("result") or {}
    if entry.get("error") and entry["status"] in ("error", "skipped", "timeout", "not run"):
        return entry["error"].splitlines()[0][:160]
    if step == "environment":
        dev = res.get("device") or {}
        return f"{dev.get('name', '?')} ({dev.get('type', '?')}), {dev.get('driver', '?')}"
    if step == "kernel_tests":
        counts = res.get("counts") or {}
        return ", ".join(f"{v} {k}" for k, v in counts.items()) or (entry.get("error") or "")
    if step == "render":
        return (f"{res.get('passed', 0)}/{res.get('total', 0)} within bounds (PSNR >= {PSNR_MIN_DB:g} dB, "
                f"<= {MAX_FRACTION_OVER:.0%} of pixels > {OVER_LSB}/255)")
    if step in ("timing", "breakdown", "pytorch_peer"):
        rows = res.get("rows") or []
        bad = sum(1 for r in rows if r.get("error"))
        return f"{len(rows) - bad} rows" + (f", {bad} with errors or skipped" if bad else "")
    return ""


def markdown(report: dict) -> str:
    steps = report["steps"]
    env = (steps["environment"].get("result") or {})
    dev = env.get("device") or {}
    lines = ["# ngrender device check", ""]
    mode = ("GPU machine" if report["mode"] == "gpu" else
            "local rehearsal (this machine's Vulkan driver, small sizes)") + (", quick subset" if report["quick"] else "")
    lines += [f"- mode: {mode}",
              f"- device: {dev.get('name', '?')} ({dev.get('type', '?')}, Vulkan {dev.get('api_version', '?')}, "
              f"{dev.get('driver', '?')})",
              f"- started {report['started']}, finished {report.get('finished') or '-'}, "
              f"{fmt(report.get('total_s'))} s of a {fmt(report.get('budget_s'), '.0f')} s budget"
              + ("" if report.get("complete") else " (**incomplete**)"),
              ""]
    if report.get("interrupted"):
        lines += [f"**Interrupted:** {report['interrupted']}", ""]
    lines += ["| step | status | seconds | summary |", "|---|---|---|---|"]
    for name, entry in steps.items():
        lines.append(f"| {entry['number']}. {entry['title']} | {entry['status']} | {fmt(entry.get('seconds'))} | "
                     f"{_status_note(name, entry).replace('|', '/')} |")
    lines.append("")
    sections = [(_md_environment, (steps["environment"], report)), (_md_kernel_tests, (steps["kernel_tests"],)),
                (_md_render, (steps["render"],)), (_md_timing, (steps["timing"],)),
                (_md_breakdown, (steps["breakdown"],)), (_md_peer, (steps["pytorch_peer"],))]
    for section, args in sections:
        try:
            lines += section(*args)
        except Exception as exc:  # noqa: BLE001 - one odd entry must not cost the whole report
            lines += [f"({section.__name__[4:]}: this section could not be shown: {type(exc).__name__}: {exc}; "
                      "see device_check.json)", ""]
    errors = [(e["number"], e["title"], e["error"]) for e in steps.values()
              if e.get("error") and e["status"] not in ("ok", "skipped")]
    if errors:
        lines += ["## Errors", ""]
        for number, title, text in errors:
            lines += [f"**{number}. {title}**", "", "```", text.strip()[-1500:], "```", ""]
    return "\n".join(lines) + "\n"


def _yes(value) -> str:
    return "yes" if value is True else "no" if value is False else "?"


def _md_environment(entry: dict, report: dict) -> list[str]:
    res = entry.get("result") or {}
    out = ["## 1. Environment", ""]
    if not res:
        return out + [f"not available ({entry['status']})", ""]
    dev, lim, feats = res.get("device") or {}, res.get("limits") or {}, res.get("features") or {}
    exts = res.get("extensions_of_interest") or {}
    out += [f"- Vulkan devices: {'; '.join(res.get('vulkan_devices') or []) or '?'}",
            f"- chosen: {dev.get('name', '?')}, {dev.get('type', '?')}, Vulkan {dev.get('api_version', '?')}, "
            f"{dev.get('driver', '?')}, vendor {dev.get('vendor_id', '?')}; auto kernel variant: "
            f"{res.get('auto_variant', '?')}; device-local memory {res.get('device_local_heap_gib', '?')} GiB",
            f"- limits: shared memory {lim.get('maxComputeSharedMemorySize', 0) // 1024} KiB, workgroup invocations "
            f"{lim.get('maxComputeWorkGroupInvocations', '?')}, storage-buffer range "
            f"{lim.get('maxStorageBufferRange', 0):,} B, uniform-buffer range {lim.get('maxUniformBufferRange', 0):,} B, "
            f"texel-buffer elements {lim.get('maxTexelBufferElements', 0):,}, push constants "
            f"{lim.get('maxPushConstantsSize', '?')} B",
            f"- timestamps: {_yes((res.get('timestamps') or {}).get('supported'))} (period "
            f"{(res.get('timestamps') or {}).get('period_ns', '?')} ns); validation layer installed: "
            f"{_yes(res.get('validation_layer'))}",
            f"- features: shaderFloat16 {_yes(feats.get('shaderFloat16'))}, storageBuffer16BitAccess "
            f"{_yes(feats.get('storageBuffer16BitAccess'))}, shaderInt64 {_yes(feats.get('shaderInt64'))}; subgroup "
            f"size {feats.get('subgroupSize', '?')}; fp16 arithmetic enabled {_yes(res.get('float16_arithmetic'))}, "
            f"subgroup size control {_yes(res.get('subgroup_size_control'))}, fused workgroup "
            f"{'x'.join(map(str, res.get('fused_workgroup') or ['?']))}"
            + (f" (range {feats['subgroupSizeRange'][0]}..{feats['subgroupSizeRange'][1]})"
               if feats.get("subgroupSizeRange") else "")
            + f", operations {', '.join(feats.get('subgroupOperations') or []) or '?'}",
            "- extensions: " + ", ".join(f"{k} {_yes(v)}" for k, v in exts.items())
            + f" ({res.get('extension_count', '?')} in all)"]
    cuda = res.get("cuda_device")
    out.append(f"- torch {res.get('torch') or 'not importable'} (CUDA build {res.get('torch_cuda_build')}); CUDA: "
               + (f"{cuda['name']} x{cuda['count']}, {cuda['memory_gib']} GiB, sm {cuda['capability']}, "
                  f"{cuda['multiprocessors']} SMs" if cuda else "not available"))
    out.append(f"- Python {res.get('python', '?')}, numpy {res.get('numpy', '?')}, "
               f"{res.get('glsl_compiler') or res.get('glsl_compiler_error', '?')}, {res.get('platform', '?')}, "
               f"{res.get('cpu_count', '?')} CPUs")
    if report.get("setup"):
        out += ["", "<details><summary>setup log</summary>", "", "```", *report["setup"][-25:], "```", "",
                "</details>"]
    return out + [""]


def _md_kernel_tests(entry: dict) -> list[str]:
    res = entry.get("result") or {}
    out = ["## 2. Kernel tests", ""]
    if res.get("command"):
        out.append(f"`{res['command']}` -> {entry['status']}"
                   + (f" ({', '.join(f'{v} {k}' for k, v in (res.get('counts') or {}).items())})"
                      if res.get("counts") else ""))
    elif entry.get("error"):
        out.append(entry["error"])
    if res.get("missing"):
        out.append(f"(not in this checkout: {', '.join(res['missing'])})")
    if entry["status"] not in ("ok", "skipped", "not run") and res.get("output_tail"):
        out += ["", "```", res["output_tail"].strip()[-1500:], "```"]
    return out + [""]


def _md_render(entry: dict) -> list[str]:
    res = entry.get("result") or {}
    rows = res.get("rows") or []
    size = res.get("size") or ["?", "?"]
    out = ["## 3. Render vs NumPy reference", "",
           f"Every default scene in every kernel variant at {size[0]}x{size[1]}, each scene's own fixed view, against "
           f"the NumPy reference render of the same view. Pass: PSNR >= {PSNR_MIN_DB:g} dB and at most "
           f"{MAX_FRACTION_OVER:.0%} of pixels with a channel off by more than {OVER_LSB}/255.", ""]
    if not rows:
        return out + [f"no rows ({entry['status']})", ""]
    has_flip = any(r.get("flip") is not None for r in rows)
    out += ["| scene | variant | PSNR dB | px > 2/255 | max diff | " + ("FLIP | " if has_flip else "")
            + "first frame s | result |",
            "|---|---|---|---|---|" + ("---|" if has_flip else "") + "---|---|"]
    for r in rows:
        if "frac_over_2" not in r:
            result = ("error: " + r["error"].splitlines()[0][:100].replace("|", "/") if r.get("error")
                      else "not compared (step stopped)")
            out.append(f"| {r['scene']} | {r['variant']} | - | - | - | " + ("- | " if has_flip else "")
                       + f"{fmt(r.get('first_frame_s'), '.2f')} | {result} |")
            continue
        psnr = r.get("psnr_db")
        result = "pass" if r.get("pass") else "**FAIL**"
        if r.get("reference_std") is not None and r["reference_std"] < 1:
            result += " (blank reference)"
        out.append(f"| {r['scene']} | {r['variant']} | {'inf' if psnr is None else fmt(psnr, '.1f')} | "
                   f"{fmt(100 * r['frac_over_2'], '.2f')}% | {r.get('max_abs')} | "
                   + (f"{fmt(r.get('flip'), '.4f')} | " if has_flip else "")
                   + f"{fmt(r.get('first_frame_s'), '.2f')} | {result} |")
    refs = entry.get("reference_renders") or {}
    if refs.get("scenes"):
        slowest = max(refs["scenes"].items(), key=lambda kv: kv[1].get("seconds") or 0)
        out += ["", f"Reference renders: {len(refs['scenes'])} scenes in {refs.get('workers')} processes; slowest "
                    f"{slowest[0]} {fmt(slowest[1].get('seconds'))} s. PSNR 'inf': identical images."]
    for note in entry.get("notes") or []:
        out.append(f"- note: {note.splitlines()[0]}")
    return out + [""]


def _md_timing(entry: dict) -> list[str]:
    res = entry.get("result") or {}
    rows = res.get("rows") or []
    out = ["## 4. Frame timing", ""]
    if not rows:
        return out + [f"no rows ({entry['status']})", ""]
    out += [f"Hash-grid scene of each app, median of {res.get('repeats')} frames after a warm-up. FPS from the GPU "
            "time (timestamps of the frame's dispatches); wall time adds the host read-back of the pixels. Paper "
            "targets: 4K at 60 FPS (GIA, NSDF, NVR), 30 FPS (NeRF).", "",
            "| app | variant | frame | wall ms | GPU ms | FPS (GPU) | FPS (wall) | 4K target FPS | meets |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = f"{APP_NAMES.get(r['app'], r['app'])}"
        if r.get("error") or "wall_ms" not in r:
            text = r["error"].splitlines()[0][:90].replace("|", "/") if r.get("error") else "incomplete (step stopped)"
            out.append(f"| {name} | {r.get('variant', '?')} | {r.get('label', '-')} | {text} | | | | | |")
            continue
        four_k = r.get("label") == (res.get("frame_labels") or ["", ""])[-1]
        meets = ("yes" if r.get("meets_target") else "no") if four_k else "-"
        out.append(f"| {name} | {r['variant']} | {r['label']} {r['frame'][0]}x{r['frame'][1]} | "
                   f"{fmt(r.get('wall_ms'), '.2f')} | {fmt(r.get('gpu_ms'), '.2f')} | {fmt(r.get('fps_gpu'), '.1f')} | "
                   f"{fmt(r.get('fps_wall'), '.1f')} | {fmt(r.get('target_fps'), '.0f')} | {meets} |")
    return out + [""]


def _md_breakdown(entry: dict) -> list[str]:
    res = entry.get("result") or {}
    rows = res.get("rows") or []
    out = ["## 5. Kernel breakdown", ""]
    if not rows:
        return out + [f"no rows ({entry['status']})", ""]
    frame = res.get("frame") or ["?", "?"]
    paper = res.get("paper") or {}
    split = paper.get("hash_split_pct") or {}
    out += [f"{frame[0]}x{frame[1]}, median of {res.get('repeats')} frames per pipeline, auto variant; % of the "
            "unfused pipeline's GPU time (timestamps). Paper (RTX 3090, Figure 5): encoding + MLP "
            + ", ".join(f"{k} {v}%" for k, v in (paper.get("encoding_mlp_pct") or {}).items())
            + (f"; hash grid split encoding {split.get('encoding')}% / MLP {split.get('mlp')}%" if split else "")
            + f"; fusing the rest of the kernels {paper.get('rest_fusion_speedup')}x.", "",
            "| app | encoding | enc % | MLP % | rest % | enc+MLP % (paper) | unfused ms | fused-rest ms | fused ms | "
            "unfused / fused | rest: unfused / fused-rest |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("error") or "pct" not in r:
            text = r["error"].splitlines()[0][:90].replace("|", "/") if r.get("error") else "incomplete (step stopped)"
            out.append(f"| {r['app']} | {r['encoding']} | {text} | | | | | | | | |")
            continue
        pct = r.get("pct") or {}
        out.append(f"| {r['app']} | {r['encoding']} | {fmt(pct.get('encoding'))} | {fmt(pct.get('mlp'))} | "
                   f"{fmt(pct.get('rest'))} | {fmt(r.get('encoding_mlp_pct'))} ({fmt(r.get('paper_encoding_mlp_pct'), '.2f')}) | "
                   f"{fmt(r['unfused']['gpu_ms'], '.2f')} | {fmt(r['fused-rest']['gpu_ms'], '.2f')} | "
                   f"{fmt(r['fused']['gpu_ms'], '.2f')} | {fmt(r.get('fused_speedup'), '.2f')}x | "
                   f"{fmt(r.get('rest_fusion_speedup'), '.2f')}x |")
    return out + [""]


def _md_peer(entry: dict) -> list[str]:
    res = entry.get("result") or {}
    rows = res.get("rows") or []
    out = ["## 6. PyTorch peer", ""]
    if not rows:
        return out + [f"no rows ({(entry.get('error') or entry['status']).splitlines()[0]})", ""]
    out += [f"PyTorch {res.get('torch')} on {res.get('torch_device')}"
            + (f" ({res['cuda_device']})" if res.get("cuda_device") else "") + f"; {res.get('note', '')}. "
            "Vulkan: wall time of the same frame (auto variant).", "",
            "| app | frame | Vulkan ms | PyTorch ms | PyTorch / Vulkan (Vulkan's speed-up) | Vulkan / PyTorch | "
            "px > 2/255 vs Vulkan |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("error") or "pytorch_ms" not in r:
            text = r["error"].splitlines()[0][:90].replace("|", "/") if r.get("error") else "incomplete (step stopped)"
            out.append(f"| {r['app']} | {text} | | | | | |")
            continue
        out.append(f"| {r['app']} | {r['frame'][0]}x{r['frame'][1]}{' (reduced)' if r.get('reduced') else ''} | "
                   f"{fmt(r['vulkan_wall_ms'], '.2f')} | {fmt(r['pytorch_ms'], '.1f')} | "
                   f"{fmt(r['pytorch_over_vulkan'], '.1f')}x | {fmt(r['vulkan_over_pytorch'], '.4f')} | "
                   f"{fmt(100 * r['image_frac_over_2'], '.2f')}% |")
    return out + [""]


# -- command line ----------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report_dir", nargs="?", help="folder for device_check.json / .md (created)")
    parser.add_argument("--local", action="store_true", help="rehearsal on this machine's driver at small sizes")
    parser.add_argument("--quick", action="store_true", help="a subset: hash-grid scenes, a few kernel tests")
    parser.add_argument("--budget", type=float, help="seconds until the report must be final (default: 455 on the "
                        "GPU, 1480 with --local)")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return run_child(args.child, Path(args.config))
    if not args.report_dir:
        parser.error("REPORT_DIR is required")
    if args.budget is None:
        args.budget = 1480.0 if args.local else 455.0
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    return Check(args).run()


if __name__ == "__main__":
    sys.exit(main())
