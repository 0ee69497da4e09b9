"""Neural SDF app: a 3D grid encoding + MLP giving the signed distance, rendered by sphere tracing."""
from __future__ import annotations

import struct

from .views import SDF_MODES as MODES, SdfView
from .base import App, camera_push
from .registry import AppSpec, register_app


class SdfApp(App):
    """One fused dispatch per tile: ray -> sphere tracing -> normal -> shading (reference: reference/sdf.py)."""

    name = "sdf"
    shader = "fused/sdf.comp"
    push = struct.Struct("<4f4f4f4f2i2i2iffii8x4f")  # matches `Push` in the shader (128 bytes)
    n_input_dims, n_output_dims = 3, 1
    view_class, modes = SdfView, MODES
    view_rules = {"max_steps": (lambda v: 1 <= v <= 4096, "in 1..4096"), "epsilon": (lambda v: v > 0, "> 0"),
                  "depth_far": (lambda v: v > 0, "> 0"), "normal_h": (lambda v: v > 0, "> 0")}

    def push_values(self, view: SdfView, frame, origin, size) -> tuple:
        return (*camera_push(view.camera, (view.normal_h, 0.0, 0.0, view.depth_far)), *frame, *origin, *size,
                view.camera.focal(frame[0]), view.epsilon, view.max_steps, MODES[view.mode], *view.background, 1.0)


register_app(AppSpec("sdf", SdfApp, reference="ngrender.reference.sdf:render",
                     torch_network="ngrender.train.torch_field:torch_network", trainer="ngrender.train.sdf",
                     real_scene="sdf_bunny", stand_in="sdf_torus"))
