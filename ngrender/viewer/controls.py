"""Camera controls of the viewer, independent of the window: orbit / pan / zoom / fly for the 3D apps
(instant-ngp testbed style) and pan / zoom over the image plane for GIA."""
from __future__ import annotations

import math

import numpy as np

from ..camera import Camera, orbit

ORBIT_DEG_PER_PIXEL = 0.3
ZOOM_PER_STEP = 0.9


class OrbitControls:
    """A camera on a sphere around ``target``: left drag orbits, right drag pans, the wheel zooms, WASD + Q/E fly
    (move the target with the camera)."""

    def __init__(self, camera: Camera, target=(0.5, 0.5, 0.5)) -> None:
        self.home = camera
        self.reset()
        self.target = np.asarray(target, np.float64)
        offset = camera.origin - self.target
        self.radius = float(max(np.linalg.norm(offset), 1e-3))
        self.elevation = math.degrees(math.asin(float(np.clip(offset[1] / self.radius, -1, 1))))
        self.azimuth = math.degrees(math.atan2(offset[0], offset[2]))
        self.fov = camera.fov_x_deg

    def reset(self) -> None:
        """Back to the scene's camera (exactly: the scene's matrix is used until the camera moves)."""
        self.moved = False

    def camera(self) -> Camera:
        if not self.moved:
            return self.home
        return orbit(self.azimuth, self.elevation, self.radius, tuple(self.target), self.fov)

    def _axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c2w = orbit(self.azimuth, self.elevation, self.radius, tuple(self.target), self.fov).c2w
        return c2w[:3, 0], c2w[:3, 1], c2w[:3, 2]

    def rotate(self, dx: float, dy: float) -> None:
        self.moved = True
        self.azimuth -= dx * ORBIT_DEG_PER_PIXEL
        self.elevation = float(np.clip(self.elevation + dy * ORBIT_DEG_PER_PIXEL, -89.0, 89.0))

    def pan(self, dx: float, dy: float, width: int) -> None:
        """Move the target with the image: a drag of one pixel moves the point under the cursor one pixel."""
        self.moved = True
        x, y, _ = self._axes()
        per_pixel = 2 * self.radius * math.tan(math.radians(self.fov) / 2) / max(width, 1)
        self.target = self.target - x * dx * per_pixel + y * dy * per_pixel

    def zoom(self, steps: float) -> None:
        self.moved = True
        self.radius = float(np.clip(self.radius * ZOOM_PER_STEP ** steps, 0.02, 50.0))

    def fly(self, forward: float, right: float, up: float) -> None:
        """Move camera and target together along the camera's axes (distance in cube units)."""
        self.moved = True
        x, y, z = self._axes()
        self.target = self.target - z * forward + x * right + y * up


class ImageControls:
    """Pan and zoom over GIA's image plane; zoom stops at native resolution (one source pixel per screen
    pixel) when the model knows its source size."""

    def __init__(self, window: tuple[float, float, float, float], source_size: tuple[int, int] | None) -> None:
        self.home = tuple(float(v) for v in window)
        self.source_size = source_size
        self.reset()

    def reset(self) -> None:
        self.window = self.home
        self.moved = False

    def pan(self, dx: float, dy: float, size: tuple[int, int]) -> None:
        self.moved = True
        x0, y0, x1, y1 = self.window
        du, dv = -dx * (x1 - x0) / size[0], -dy * (y1 - y0) / size[1]
        self.window = (x0 + du, y0 + dv, x1 + du, y1 + dv)

    def zoom(self, steps: float, at: tuple[float, float], size: tuple[int, int]) -> None:
        """Zoom about the cursor position ``at`` (pixels)."""
        self.moved = True
        x0, y0, x1, y1 = self.window
        k = ZOOM_PER_STEP ** steps
        if self.source_size:
            k = max(k, size[0] / self.source_size[0] / (x1 - x0))  # no closer than native resolution
        u = x0 + at[0] / size[0] * (x1 - x0)
        v = y0 + at[1] / size[1] * (y1 - y0)
        self.window = (u - (u - x0) * k, v - (v - y0) * k, u + (x1 - u) * k, v + (y1 - v) * k)
