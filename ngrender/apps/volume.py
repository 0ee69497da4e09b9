"""Neural volume app (NVR): a 3D grid encoding + MLP giving RGB + density, rendered by ray marching."""
from __future__ import annotations

import struct
from typing import Any, Mapping

from ..camera import camera_from_json
from ..errors import ConfigError
from ..reference.volume import MODES, VolumeView
from .base import FusedApp


class VolumeApp(FusedApp):
    """One fused dispatch per tile: ray -> fixed-step marching -> compositing (reference: reference/volume.py)."""

    name = "volume"
    shader = "fused/volume.comp"
    push = struct.Struct("<4f4f4f4f2i2i2iffii8x4f")  # matches `Push` in the shader (128 bytes)
    n_input_dims, n_output_dims = 3, 4
    view_fields = ("camera", "mode", "n_steps", "density_scale", "min_transmittance", "background")

    def _make_view(self, settings: Mapping[str, Any]) -> VolumeView:
        view = VolumeView()
        camera = camera_from_json(settings["camera"], "volume view camera") if "camera" in settings else view.camera
        mode = settings.get("mode", view.mode)
        if mode not in MODES:
            raise ConfigError(f"volume render mode {mode!r} is not one of {list(MODES)}")
        try:
            n_steps = int(settings.get("n_steps", view.n_steps))
            density_scale = float(settings.get("density_scale", view.density_scale))
            min_t = float(settings.get("min_transmittance", view.min_transmittance))
            background = tuple(float(c) for c in settings.get("background", view.background))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"volume view: {exc}") from None
        if not 1 <= n_steps <= 8192:
            raise ConfigError(f"volume n_steps must be in 1..8192, got {n_steps}")
        if density_scale < 0 or not 0 <= min_t < 1 or len(background) != 3:
            raise ConfigError("volume view needs density_scale >= 0, 0 <= min_transmittance < 1, RGB background")
        return VolumeView(camera, mode, n_steps, density_scale, min_t, background)

    def push_values(self, view: VolumeView, frame, origin, size) -> tuple:
        c2w = view.camera.c2w
        extra = (view.density_scale, view.min_transmittance, float(view.dt))
        axes = [(*c2w[:3, i], extra[i]) for i in range(3)]
        return (*axes[0], *axes[1], *axes[2], *c2w[:3, 3], 0.0, *frame, *origin, *size,
                view.camera.focal(frame[0]), 0.0, view.n_steps, MODES[view.mode], *view.background, 1.0)
