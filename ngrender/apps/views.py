"""What a scene sets for each built-in app: its view type (a frozen dataclass whose defaults are the app's
default view), its render modes (name -> the shader's mode number), and the kernel variants.

Vulkan-free on purpose: the NumPy reference, the trainers and scene files use these without a device."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..camera import Camera, orbit
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..model import Model

VARIANTS = ("auto", "baked", "buffered", "shared", "shared-fp16")  # kernel variants: see apps/field.py


@dataclass(frozen=True)
class GigapixelView:
    """Which part of the image plane the frame shows: u right, v down, (0,0,1,1) is the whole image."""

    window: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    background: float = 0.0

    def __post_init__(self) -> None:
        x0, y0, x1, y1 = self.window
        if not (np.isfinite(self.window).all() and x1 > x0 and y1 > y0):
            raise ConfigError(f"view window {self.window} must be finite with x1 > x0 and y1 > y0")


def pixel_step(width: int, height: int, window: tuple[float, float, float, float]) -> tuple[float, float]:
    """Image-plane size of one pixel, in float32 (the value the shader receives)."""
    x0, y0, x1, y1 = (np.float32(c) for c in window)
    return (x1 - x0) / np.float32(width), (y1 - y0) / np.float32(height)


SDF_MODES = {"shaded": 0, "normals": 1, "depth": 2, "steps": 3, "ao": 4}
SDF_AO_MODES = ("shaded", "ao")  # the modes that take the occlusion samples


@dataclass(frozen=True)
class SdfView:
    camera: Camera = field(default_factory=lambda: orbit(30.0, 20.0, 1.6))
    mode: str = "shaded"
    max_steps: int = 96
    epsilon: float = 1e-3
    depth_far: float = 3.0
    normal_h: float = 2e-3  # finite-difference offset of the normal samples (unit-cube units)
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # ambient occlusion: sdf at ao_samples points i * ao_step along the normal (i = 1..ao_samples); 0: off
    ao_samples: int = 5
    ao_step: float = 0.02
    ao_strength: float = 1.5

    @property
    def ao_scale(self) -> np.float32:
        """ao = clamp(1 - ao_scale * sum_i 2^-i (i ao_step - sdf_i), 0, 1): the strength per unit of distance."""
        return np.float32(self.ao_strength) / np.float32(self.ao_step)

    @property
    def ao_taken(self) -> int:
        """Occlusion samples a hit takes in this view's mode."""
        return self.ao_samples if self.mode in SDF_AO_MODES else 0


VOLUME_MODES = {"rgb": 0, "opacity": 1, "steps": 2}


@dataclass(frozen=True)
class VolumeView:
    camera: Camera = field(default_factory=lambda: orbit(30.0, 20.0, 1.6))
    mode: str = "rgb"
    n_steps: int = 128  # samples along the cube's diagonal
    density_scale: float = 1.0
    min_transmittance: float = 0.01
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # first sample at t_near + u dt: u a hash of (pixel, seed) in [0, 1) (banding becomes fine noise), else 1/2
    jitter: bool = True
    seed: int = 0  # accumulating frames of seeds 0..N-1 averages the noise away

    @property
    def dt(self) -> np.float32:
        return np.float32(np.sqrt(3.0) / self.n_steps)


NERF_MODES = {"rgb": 0, "depth": 1, "opacity": 2, "samples": 3}
DEFAULT_CONE_ANGLE = 1.0 / 256


@dataclass(frozen=True)
class NerfView:
    camera: Camera = field(default_factory=lambda: orbit(30.0, 20.0, 1.6))
    mode: str = "rgb"
    n_steps: int = 1024  # steps along the cube's diagonal: dt = sqrt(3) / n_steps
    min_transmittance: float = 0.01
    use_occupancy: bool = True
    depth_far: float = 3.0
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    cone_angle: float = -1.0  # < 0: instant-ngp's default for the model's box (1/256 beyond the unit cube, else 0)

    @property
    def dt(self) -> np.float32:
        """The smallest (and, without cone stepping, the only) step."""
        return np.float32(np.sqrt(3.0) / self.n_steps)


def cone_angle(view: NerfView, model: Model) -> np.float32:
    """The view's cone angle, or instant-ngp's default for the model's scene box when the view leaves it < 0."""
    if view.cone_angle >= 0:
        return np.float32(view.cone_angle)
    return np.float32(DEFAULT_CONE_ANGLE if model.aabb_scale > 1 else 0.0)
