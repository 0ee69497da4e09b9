"""Neural SDF app: a 3D grid encoding + MLP giving the signed distance, rendered by sphere tracing."""
from __future__ import annotations

from ..shader_interface import PUSH_BLOCKS
from .views import SDF_MODES as MODES, SdfView
from .base import App, camera_push
from .registry import AppSpec, register_app


class SdfApp(App):
    """One fused dispatch per tile: ray -> sphere tracing -> normal -> occlusion samples -> shading (reference:
    reference/sdf.py)."""

    name = "sdf"
    shader = "fused/sdf.comp"
    push = PUSH_BLOCKS["sdf"]
    n_input_dims, n_output_dims = 3, 1
    view_class, modes = SdfView, MODES
    view_rules = {"max_steps": (lambda v: 1 <= v <= 4096, "in 1..4096"), "epsilon": (lambda v: v > 0, "> 0"),
                  "depth_far": (lambda v: v > 0, "> 0"), "normal_h": (lambda v: v > 0, "> 0"),
                  "ao_samples": (lambda v: 0 <= v <= 32, "in 0..32"), "ao_step": (lambda v: v > 0, "> 0"),
                  "ao_strength": (lambda v: v >= 0, ">= 0")}

    def push_values(self, view: SdfView, frame, origin, size) -> dict:
        return {**camera_push(view.camera), "normal_h": view.normal_h, "depth_far": view.depth_far, "frame": frame,
                "tile_origin": origin, "tile_size": size, "focal": view.camera.focal(frame[0]),
                "epsilon": view.epsilon, "max_steps": view.max_steps, "mode": MODES[view.mode],
                "ao_samples": view.ao_taken, "ao_step": view.ao_step, "ao_scale": float(view.ao_scale),
                "background": (*view.background, 1.0)}


register_app(AppSpec("sdf", SdfApp, reference="ngrender.reference.sdf:render",
                     torch_network="ngrender.train.torch_field:torch_network", trainer="ngrender.train.sdf",
                     real_scene="sdf_bunny", stand_in="sdf_torus"))
