"""Pinhole cameras in the instant-ngp / Blender convention: camera-to-world 4x4, OpenGL axes (x right, y up,
looking down -z), horizontal field of view. The 3D apps' model space is the unit cube [0,1]^3."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from . import validate
from .errors import ConfigError


@dataclass(frozen=True)
class Camera:
    c2w: np.ndarray  # (4, 4) float64, rotation columns = camera x, y, z axes in world space
    fov_x_deg: float = 50.0

    def __post_init__(self) -> None:
        m = np.asarray(self.c2w, dtype=np.float64)
        if m.shape != (4, 4) or not np.all(np.isfinite(m)):
            raise ConfigError(f"camera transform must be a finite 4x4 matrix, got shape {m.shape}")
        rot = m[:3, :3]
        if not np.allclose(rot.T @ rot, np.eye(3), atol=1e-3):
            raise ConfigError("camera transform's rotation part is not orthonormal (scale or shear present)")
        if not 1.0 <= self.fov_x_deg <= 170.0:
            raise ConfigError(f"camera field of view must be in 1..170 degrees, got {self.fov_x_deg}")
        object.__setattr__(self, "c2w", m)

    @property
    def origin(self) -> np.ndarray:
        return self.c2w[:3, 3]

    def focal(self, width: int) -> float:
        """Focal length in pixels for a frame ``width`` pixels wide."""
        return 0.5 * width / math.tan(math.radians(self.fov_x_deg) / 2)

    def to_json(self) -> dict:
        return {"transform_matrix": self.c2w.tolist(), "fov_x": self.fov_x_deg}


def look_at(eye, target=(0.5, 0.5, 0.5), up=(0.0, 1.0, 0.0), fov_x_deg: float = 50.0) -> Camera:
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    back = eye - target
    if np.linalg.norm(back) < 1e-9:
        raise ConfigError("camera eye and target coincide")
    z = back / np.linalg.norm(back)
    x = np.cross(up, z)
    if np.linalg.norm(x) < 1e-9:
        raise ConfigError("camera up vector is parallel to the viewing direction")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye
    return Camera(c2w, fov_x_deg)


def orbit(azimuth_deg: float, elevation_deg: float, radius: float, target=(0.5, 0.5, 0.5),
          fov_x_deg: float = 50.0) -> Camera:
    """A camera on a sphere around ``target``, y up; azimuth 0 looks along -z."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    offset = radius * np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])
    return look_at(np.asarray(target) + offset, target, fov_x_deg=fov_x_deg)


def c2w_from_ngp(matrix) -> np.ndarray:
    """ngrender's camera-to-world (4x4) for an instant-ngp camera matrix (3x4, NGP space): NGP space is ngrender's
    model space with the camera's y and z axes flipped (instant-ngp's camera looks along +z with y down)."""
    c2w = np.eye(4)
    c2w[:3, :] = np.asarray(matrix, np.float64)[:3, :4]
    c2w[:3, 1:3] *= -1
    return c2w


def ngp_from_c2w(c2w) -> np.ndarray:
    """instant-ngp's 3x4 camera matrix for an ngrender camera-to-world (the inverse of ``c2w_from_ngp``)."""
    m = np.array(c2w, np.float64)[:3, :4]
    m[:, 1:3] *= -1
    return m


def fov_other_axis(fov_deg: float, from_size: int, to_size: int) -> float:
    """The field of view along the other image axis of a pinhole camera: ``fov_deg`` spans ``from_size``
    pixels, the result spans ``to_size`` (square pixels)."""
    return math.degrees(2 * math.atan(math.tan(math.radians(fov_deg) / 2) * to_size / from_size))


CAMERA_KEYS = ("transform_matrix", "orbit", "fov_x", "camera_angle_x")
ORBIT_KEYS = ("azimuth", "elevation", "radius", "target")


def camera_from_json(data: Mapping[str, Any], where: str = "camera") -> Camera:
    """``{"transform_matrix": 4x4, "fov_x": deg}`` or ``{"orbit": {"azimuth", "elevation", "radius"}, "fov_x"}``
    (``camera_angle_x`` in radians is accepted as in transforms.json)."""
    data = validate.obj(data, where, CAMERA_KEYS)
    if "fov_x" in data:
        fov = validate.number(data["fov_x"], f"{where}.fov_x", 1.0, 170.0)
    elif "camera_angle_x" in data:
        fov = math.degrees(validate.number(data["camera_angle_x"], f"{where}.camera_angle_x", 0.0, math.pi,
                                           lo_open=True, hi_open=True))
    else:
        fov = 50.0
    if "transform_matrix" in data:
        return Camera(np.asarray(validate.matrix(data["transform_matrix"], f"{where}.transform_matrix", 4, 4)), fov)
    if "orbit" in data:
        o = validate.obj(data["orbit"], f"{where}.orbit", ORBIT_KEYS)
        return orbit(validate.number(o.get("azimuth", 0.0), f"{where}.orbit.azimuth"),
                     validate.number(o.get("elevation", 0.0), f"{where}.orbit.elevation", -90.0, 90.0),
                     validate.number(o.get("radius", 1.5), f"{where}.orbit.radius", 0.0, 1e6, lo_open=True),
                     validate.numbers(o.get("target", [0.5, 0.5, 0.5]), f"{where}.orbit.target", 3), fov)
    raise ConfigError(f"{where} needs 'transform_matrix' or 'orbit'")
