"""The viewer's Dear ImGui panel: frame time and its graph, the GPU breakdown, the NGPC projection, the frame's
resolution and refinement progress, and the controls (mode, model, pipeline, NGPC preset, resolution, dynamic
resolution and its target, accumulation, exposure, vsync, screenshot)."""
from __future__ import annotations

import dataclasses
import sys
from typing import Callable

from ..apps.base import PIPELINES
from ..errors import NgrenderError
from ..ngpc.arch import presets
from .refine import has_seed

MIN_SCALE = 0.1


def build_panel(viewer) -> None:
    """The panel's widgets for this frame (called between ImGui's new_frame and render)."""
    imgui, s = viewer.gui.imgui, viewer.stats
    imgui.set_next_window_pos((8, 8), imgui.Cond_.first_use_ever.value)
    imgui.set_next_window_bg_alpha(0.85)
    imgui.begin("ngrender", None, imgui.WindowFlags_.always_auto_resize.value)
    ema = viewer.ema_ms if viewer.ema_ms is not None else 0.0  # None until the first frame is drawn
    imgui.text(f"{ema:.1f} ms/frame (EMA), {1e3 / max(ema, 1e-6):.1f} FPS")
    imgui.plot_lines("##frame ms", viewer.history, graph_size=(240, 40), scale_min=0.0)
    classes = s.class_ms()
    if s.pipeline == "fused":
        imgui.text(f"GPU {s.gpu_ms:.1f} ms (one fused kernel)")
    else:
        imgui.text(f"GPU {s.gpu_ms:.1f} ms: encoding {classes['encoding']:.1f}, MLP {classes['mlp']:.1f}, "
                   f"rest {classes['rest']:.1f}")
    if s.ngpc_ms is not None:
        imgui.text(f"{viewer.ngpc_preset} projected: {s.ngpc_ms:.2f} ms ({1e3 / s.ngpc_ms:.0f} FPS)")
    else:
        imgui.text("NGPC projection: choose the ngpc pipeline")
    w, h = s.width, s.height
    per = "samples/pixel" if s.pipeline != "fused" else "rays/pixel"
    imgui.text(f"moving frame: {s.samples / (w * h):.2f} {per}")
    imgui.text(f"{resolution_line(viewer)}, {viewer.progress()}")
    if imgui.collapsing_header("controls"):
        _build_controls(viewer)
    imgui.end()


def resolution_line(viewer) -> str:
    """The frame shown: its size, its share of the window's side and how it was made, e.g.
    ``480x270 (50%, dynamic)``."""
    if viewer.shown is None:
        return "no frame yet"
    h, w = viewer.shown.shape[:2]
    if viewer.shown is viewer.moving_frame and viewer.dynamic:
        kind = "dynamic" if viewer.moving_divisor == 1 else f"dynamic, march steps / {viewer.moving_divisor:g}"
    else:
        kind = "rest"
    return f"{w}x{h} ({w / viewer.swapchain.extent[0]:.0%}, {kind})"


def _build_controls(viewer) -> None:
    imgui = viewer.gui.imgui
    if hasattr(viewer.base_view, "mode") and viewer.app.modes:
        modes = list(viewer.app.modes)
        changed, index = imgui.combo("mode", modes.index(viewer.base_view.mode), modes)
        if changed:
            viewer.base_view = dataclasses.replace(viewer.base_view, mode=modes[index])
    names = [p.stem for p in viewer.siblings]
    current = names.index(viewer.scene.path.stem) if viewer.scene.path.stem in names else 0
    changed, index = imgui.combo("model", current, names)
    if changed and index != current:
        _report(viewer.switch_scene, viewer.siblings[index])
    pipelines = list(PIPELINES)
    changed, index = imgui.combo("pipeline", pipelines.index(viewer.pipeline), pipelines)
    if changed:
        _report(viewer.set_pipeline, pipelines[index])
    names = presets()
    changed, index = imgui.combo("NGPC", names.index(viewer.ngpc_preset), names)
    if changed:
        _report(viewer.set_pipeline, viewer.pipeline, names[index])
    changed, value = imgui.slider_float("resolution", viewer.user_scale, MIN_SCALE, 1.0)
    if changed:
        viewer.set_user_scale(value)
    _, viewer.dynamic = imgui.checkbox("dynamic resolution", viewer.dynamic)
    if viewer.dynamic:
        _, viewer.target_fps = imgui.slider_float("target FPS", viewer.target_fps, 1.0, 120.0)
    if has_seed(viewer.base_view):
        changed, value = imgui.slider_int("accumulate", viewer.accumulate, 1, 32)
        if changed:
            viewer.set_accumulate(value)
    _, viewer.exposure = imgui.slider_float("exposure", viewer.exposure, -4.0, 4.0)
    changed, vsync = imgui.checkbox("vsync", viewer.swapchain.vsync)
    if changed:
        viewer.set_vsync(vsync)
    if imgui.button("screenshot (F12)"):
        viewer.screenshot()
    imgui.text("Tab: hide, Shift+R: reset, C: save camera, P: add to path")


def _report(action: Callable, *args) -> None:
    """Run a panel action; a user error is one ``ngrender: error:`` line and the viewer stays as it was."""
    try:
        action(*args)
    except NgrenderError as exc:
        print(f"ngrender: error: {exc}", file=sys.stderr)
