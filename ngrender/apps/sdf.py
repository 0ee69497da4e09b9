"""Neural SDF app: a 3D grid encoding + MLP giving the signed distance, rendered by sphere tracing."""
from __future__ import annotations

import struct
from typing import Any, Mapping

from ..camera import camera_from_json
from ..errors import ConfigError
from ..reference.sdf import MODES, SdfView
from .base import FusedApp


class SdfApp(FusedApp):
    """One fused dispatch per tile: ray -> sphere tracing -> normal -> shading (reference: reference/sdf.py)."""

    name = "sdf"
    shader = "fused/sdf.comp"
    push = struct.Struct("<4f4f4f4f2i2i2iffii8x4f")  # matches `Push` in the shader (128 bytes)
    n_input_dims, n_output_dims = 3, 1
    view_fields = ("camera", "mode", "max_steps", "epsilon", "depth_far", "normal_h", "background")

    def _make_view(self, settings: Mapping[str, Any]) -> SdfView:
        view = SdfView()
        if "camera" in settings:
            view = SdfView(camera=camera_from_json(settings["camera"], "sdf view camera"))
        mode = settings.get("mode", view.mode)
        if mode not in MODES:
            raise ConfigError(f"sdf render mode {mode!r} is not one of {list(MODES)}")
        try:
            max_steps = int(settings.get("max_steps", view.max_steps))
            epsilon = float(settings.get("epsilon", view.epsilon))
            depth_far = float(settings.get("depth_far", view.depth_far))
            normal_h = float(settings.get("normal_h", view.normal_h))
            background = tuple(float(c) for c in settings.get("background", view.background))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"sdf view: {exc}") from None
        if not 1 <= max_steps <= 4096:
            raise ConfigError(f"sdf max_steps must be in 1..4096, got {max_steps}")
        if not (epsilon > 0 and depth_far > 0 and normal_h > 0) or len(background) != 3:
            raise ConfigError("sdf view needs epsilon, depth_far and normal_h > 0 and an RGB background")
        return SdfView(view.camera, mode, max_steps, epsilon, depth_far, normal_h, background)

    def push_values(self, view: SdfView, frame, origin, size) -> tuple:
        c2w = view.camera.c2w
        axes = [(*c2w[:3, i], view.normal_h if i == 0 else 0.0) for i in range(3)]
        return (*axes[0], *axes[1], *axes[2], *c2w[:3, 3], view.depth_far, *frame, *origin, *size,
                view.camera.focal(frame[0]), view.epsilon, view.max_steps, MODES[view.mode], *view.background, 1.0)
