"""NeRF app: instant-ngp's radiance field (hash grid + density MLP + SH + colour MLP) with occupancy skipping."""
from __future__ import annotations

from ..errors import ConfigError
from ..model import Model
from ..shader_interface import PUSH_BLOCKS
from .views import NERF_MODES as MODES, NerfView, cone_angle
from .base import App, camera_push
from .registry import AppSpec, register_app


class NerfApp(App):
    """One fused dispatch per tile (reference: reference/nerf.py)."""

    name = "nerf"
    shader = "fused/nerf.comp"
    push = PUSH_BLOCKS["nerf"]
    samples_per_step = 8  # instant-ngp's largest number of steps between compactions
    n_input_dims, n_output_dims = 3, 16
    view_class, modes = NerfView, MODES
    view_rules = {"n_steps": (lambda v: 1 <= v <= 16384, "in 1..16384"),
                  "min_transmittance": (lambda v: 0 <= v < 1, "in [0, 1)"), "depth_far": (lambda v: v > 0, "> 0"),
                  "cone_angle": (lambda v: v == -1 or 0 <= v <= 1, "-1 (the default for the scene box) or in [0, 1]")}

    @classmethod
    def check_model(cls, model: Model) -> None:
        super().check_model(model)
        if model.rgb_net is None or model.sh_degree == 0:
            raise ConfigError("a nerf model needs 'dir_encoding' (SphericalHarmonics) and 'rgb_network'")
        if model.occupancy is None:
            raise ConfigError("a nerf model needs its occupancy grid (tensor 'occupancy')")

    @property
    def extra_defines(self) -> dict[str, int]:
        out = {"SH_DEGREE": self.model.sh_degree}
        if self.model.aabb_scale > 1:  # the scene box beyond the unit cube, its occupancy cascades
            out.update(AABB_SCALE=self.model.aabb_scale, NERF_CASCADES=self.model.occupancy_cascades)
        return out

    def push_values(self, view: NerfView, frame, origin, size) -> dict:
        return {**camera_push(view.camera), "depth_far": view.depth_far, "min_transmittance": view.min_transmittance,
                "dt": float(view.dt), "use_occupancy": float(view.use_occupancy), "frame": frame,
                "tile_origin": origin, "tile_size": size, "focal": view.camera.focal(frame[0]),
                "cone_angle": float(cone_angle(view, self.model)), "n_steps": view.n_steps,
                "mode": MODES[view.mode], "background": (*view.background, 1.0)}


register_app(AppSpec("nerf", NerfApp, reference="ngrender.reference.nerf:render",
                     torch_network="ngrender.train.torch_field:torch_radiance", trainer="ngrender.train.nerf",
                     real_scene="nerf_bunny", stand_in="nerf_blobs"))
