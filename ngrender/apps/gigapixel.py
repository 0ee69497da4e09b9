"""Gigapixel image app (GIA): a 2D grid encoding + MLP mapping image-plane coordinates to RGB."""
from __future__ import annotations

import struct
from dataclasses import dataclass
import numpy as np

from ..errors import ConfigError
from ..reference.gigapixel import pixel_step
from .base import App


@dataclass(frozen=True)
class GigapixelView:
    """Which part of the image plane the frame shows: u right, v down, (0,0,1,1) is the whole image."""

    window: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    background: float = 0.0

    def __post_init__(self) -> None:
        x0, y0, x1, y1 = self.window
        if not (np.isfinite(self.window).all() and x1 > x0 and y1 > y0):
            raise ConfigError(f"view window {self.window} must be finite with x1 > x0 and y1 > y0")


class GigapixelApp(App):
    """One fused dispatch per tile: pixel -> image-plane coordinate -> encoding -> MLP -> RGBA8."""

    name = "gigapixel"
    shader = "fused/gigapixel.comp"
    push = struct.Struct("<2i2i2f2ff")  # matches `Push` in the shader
    n_input_dims, n_output_dims = 2, 3
    view_class = GigapixelView

    def push_values(self, view: GigapixelView, frame, origin, size) -> tuple:
        du, dv = pixel_step(frame[0], frame[1], view.window)
        return (*origin, *size, view.window[0], view.window[1], du, dv, view.background)
