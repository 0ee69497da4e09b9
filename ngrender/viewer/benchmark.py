"""``ngrender view SCENE --benchmark SECONDS``: fly a fixed camera motion for SECONDS (3D apps: an orbit whose
azimuth advances with wall time; GIA: a pan and zoom of the window), counted as input every frame, then rest
until the frame is refined; the figures (frame times while moving, resolution, time to full refinement, the
per-stage breakdown) as lines and as a dict (``--benchmark-json``)."""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..errors import NgrenderError
from .app import MOVING_S, STAGES, Viewer
from .controls import ImageControls

ORBIT_DEG_PER_S = 36.0   # a full turn in 10 s
WARMUP_FRAMES = 3        # not counted: the first dispatches compile the kernels (lavapipe JITs on first use)
GIVE_UP_S = 300.0        # rest this long at most for the refinement


def _move(viewer: Viewer, t: float, home: Any) -> None:
    """The benchmark's camera at ``t`` seconds, as if the user had moved it."""
    controls = viewer.controls
    if isinstance(controls, ImageControls):
        x0, y0, x1, y1 = home
        w, h = x1 - x0, y1 - y0
        cx = (x0 + x1) / 2 + 0.15 * w * math.sin(2 * math.pi * t / 10)
        cy = (y0 + y1) / 2 + 0.15 * h * math.sin(2 * math.pi * t / 7)
        k = 0.75 + 0.25 * math.cos(2 * math.pi * t / 10)  # zoom in to 2x and back out every 10 s
        controls.window = (cx - k * w / 2, cy - k * h / 2, cx + k * w / 2, cy + k * h / 2)
    else:
        controls.azimuth = home + ORBIT_DEG_PER_S * t
    controls.moved = True
    viewer.last_input = time.perf_counter()


def _step(viewer: Viewer) -> None:
    if not viewer.step():
        raise NgrenderError("the window was closed during the benchmark")


def run_benchmark(viewer: Viewer, seconds: float, give_up_s: float = GIVE_UP_S) -> dict[str, Any]:
    """Fly for ``seconds``, rest until refined (at most ``give_up_s``); the figures."""
    controls = viewer.controls
    home = controls.window if isinstance(controls, ImageControls) else controls.azimuth
    for i in range(WARMUP_FRAMES):
        _move(viewer, -0.1 * (WARMUP_FRAMES - i), home)
        _step(viewer)
    frame_ms, scales, divisors, stages = [], [], [], {name: [] for name in STAGES}
    start = time.perf_counter()
    while (now := time.perf_counter()) - start < seconds:
        _move(viewer, now - start, home)
        before = time.perf_counter()
        _step(viewer)
        frame_ms.append((time.perf_counter() - before) * 1e3)
        scales.append(viewer.scale)
        divisors.append(viewer.moving_divisor)
        for name in STAGES:
            stages[name].append(viewer.stage_ms[name])
    moving_s = time.perf_counter() - start
    stopped = viewer.last_input
    steps, render_ms = 0, 0.0
    while not viewer.refined and time.perf_counter() - stopped < give_up_s:
        _step(viewer)
        steps += 1
        render_ms += viewer.stage_ms["render"]
    refined = viewer.refined
    refine_s = time.perf_counter() - stopped
    w, h = viewer.swapchain.extent
    rest_w, rest_h = viewer.render_size()
    return {
        "scene": str(viewer.scene.path), "device": viewer.render_device.info.name, "window": [w, h],
        "dynamic": viewer.dynamic, "target_fps": viewer.target_fps, "resolution_scale": viewer.user_scale,
        "pipeline": viewer.pipeline, "moving_s": moving_s, "frames": len(frame_ms),
        "fps_moving": len(frame_ms) / moving_s,
        "median_ms": float(np.median(frame_ms)) if frame_ms else None,
        "p90_ms": float(np.percentile(frame_ms, 90)) if frame_ms else None,
        "mean_resolution_factor": float(np.mean(scales)) if scales else None,
        "mean_step_divisor": float(np.mean(divisors)) if divisors else None,
        "rest_size": [rest_w, rest_h], "refined": refined, "refine_s": refine_s if refined else None,
        "refine_steps": steps, "refine_render_ms": render_ms, "moving_wait_s": MOVING_S,
        "give_up_s": give_up_s,
        "stages_ms": {name: float(np.median(v)) if v else 0.0 for name, v in stages.items()},
    }


def report_lines(figures: dict[str, Any]) -> list[str]:
    """What ``--benchmark`` prints."""
    f = figures
    w, h = f["window"]
    mode = f"dynamic resolution toward {f['target_fps']:g} FPS" if f["dynamic"] else "no dynamic resolution"
    lines = [f"benchmark: {f['scene']}, {w}x{h} window on {f['device']}, {f['pipeline']} pipeline, {mode}, rest "
             f"resolution {f['resolution_scale']:.0%}"]
    if f["frames"]:
        lines.append(f"moving {f['moving_s']:.1f} s: {f['frames']} frames, {f['fps_moving']:.1f} FPS, frame time "
                     f"median {f['median_ms']:.1f} ms, p90 {f['p90_ms']:.1f} ms, mean resolution factor "
                     f"{f['mean_resolution_factor']:.3f}" + (f", march steps / {f['mean_step_divisor']:.2f} on average"
                                                            if f["mean_step_divisor"] > 1 else ""))
    else:
        lines.append(f"moving {f['moving_s']:.1f} s: no frame completed")
    rest_w, rest_h = f["rest_size"]
    if f["refined"]:
        lines.append(f"refined to {rest_w}x{rest_h} {f['refine_s']:.2f} s after the camera stopped (it counts as "
                     f"moving for {f['moving_wait_s']:g} s; {f['refine_steps']} steps, {f['refine_render_ms']:.0f} ms "
                     f"rendering)")
    else:
        lines.append(f"gave up: not refined to {rest_w}x{rest_h} after {f['give_up_s']:g} s at rest")
    lines.append("stages while moving, median ms per frame: " +
                 ", ".join(f"{k} {v:.2f}" for k, v in f["stages_ms"].items()))
    return lines
