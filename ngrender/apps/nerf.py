"""NeRF app: instant-ngp's radiance field (hash grid + density MLP + SH + colour MLP) with occupancy skipping."""
from __future__ import annotations

import struct
from typing import Any, Mapping

from ..camera import camera_from_json
from ..errors import ConfigError
from ..model import Model
from ..reference.nerf import MODES, NerfView
from .base import FusedApp


class NerfApp(FusedApp):
    """One fused dispatch per tile (reference: reference/nerf.py)."""

    name = "nerf"
    shader = "fused/nerf.comp"
    push = struct.Struct("<4f4f4f4f2i2i2iffii8x4f")  # matches `Push` in the shader (128 bytes)
    n_input_dims, n_output_dims = 3, 16
    view_fields = ("camera", "mode", "n_steps", "min_transmittance", "use_occupancy", "depth_far", "background")

    @classmethod
    def check_model(cls, model: Model) -> None:
        super().check_model(model)
        if model.rgb_net is None or model.sh_degree == 0:
            raise ConfigError("a nerf model needs 'dir_encoding' (SphericalHarmonics) and 'rgb_network'")
        if model.occupancy is None:
            raise ConfigError("a nerf model needs its occupancy grid (tensor 'occupancy')")

    @property
    def extra_defines(self) -> dict[str, int]:
        return {"SH_DEGREE": self.model.sh_degree}

    def _make_view(self, settings: Mapping[str, Any]) -> NerfView:
        view = NerfView()
        camera = camera_from_json(settings["camera"], "nerf view camera") if "camera" in settings else view.camera
        mode = settings.get("mode", view.mode)
        if mode not in MODES:
            raise ConfigError(f"nerf render mode {mode!r} is not one of {list(MODES)}")
        try:
            n_steps = int(settings.get("n_steps", view.n_steps))
            min_t = float(settings.get("min_transmittance", view.min_transmittance))
            use_occupancy = bool(settings.get("use_occupancy", view.use_occupancy))
            depth_far = float(settings.get("depth_far", view.depth_far))
            background = tuple(float(c) for c in settings.get("background", view.background))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"nerf view: {exc}") from None
        if not 1 <= n_steps <= 16384:
            raise ConfigError(f"nerf n_steps must be in 1..16384, got {n_steps}")
        if not 0 <= min_t < 1 or not depth_far > 0 or len(background) != 3:
            raise ConfigError("nerf view needs 0 <= min_transmittance < 1, depth_far > 0, an RGB background")
        return NerfView(camera, mode, n_steps, min_t, use_occupancy, depth_far, background)

    def push_values(self, view: NerfView, frame, origin, size) -> tuple:
        c2w = view.camera.c2w
        extra = (view.depth_far, view.min_transmittance, float(view.dt))
        axes = [(*c2w[:3, i], extra[i]) for i in range(3)]
        return (*axes[0], *axes[1], *axes[2], *c2w[:3, 3], float(view.use_occupancy), *frame, *origin, *size,
                view.camera.focal(frame[0]), 0.0, view.n_steps, MODES[view.mode], *view.background, 1.0)
