"""Neural volume app (NVR): a 3D grid encoding + MLP giving RGB + density, rendered by ray marching."""
from __future__ import annotations

from ..shader_interface import PUSH_BLOCKS
from .views import VOLUME_MODES as MODES, VolumeView
from .base import App, camera_push
from .registry import AppSpec, register_app


class VolumeApp(App):
    """One fused dispatch per tile: ray -> fixed-step marching -> compositing (reference: reference/volume.py)."""

    name = "volume"
    shader = "fused/volume.comp"
    push = PUSH_BLOCKS["volume"]
    samples_per_step = 8  # instant-ngp's largest number of steps between compactions
    n_input_dims, n_output_dims = 3, 4
    view_class, modes = VolumeView, MODES
    view_rules = {"n_steps": (lambda v: 1 <= v <= 8192, "in 1..8192"),
                  "density_scale": (lambda v: v >= 0, ">= 0"),
                  "min_transmittance": (lambda v: 0 <= v < 1, "in [0, 1)"),
                  "seed": (lambda v: 0 <= v < 2 ** 32, "in 0..2^32-1")}

    def push_values(self, view: VolumeView, frame, origin, size) -> dict:
        return {**camera_push(view.camera), "density_scale": view.density_scale,
                "min_transmittance": view.min_transmittance, "dt": float(view.dt), "frame": frame,
                "tile_origin": origin, "tile_size": size, "focal": view.camera.focal(frame[0]),
                "n_steps": view.n_steps, "mode": MODES[view.mode], "jitter": int(view.jitter), "seed": view.seed,
                "background": (*view.background, 1.0)}


register_app(AppSpec("volume", VolumeApp, reference="ngrender.reference.volume:render",
                     torch_network="ngrender.train.torch_field:torch_network", trainer="ngrender.train.volume",
                     real_scene="volume_head", stand_in="volume_cloud"))
