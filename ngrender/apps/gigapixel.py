"""Gigapixel image app (GIA): a 2D grid encoding + MLP mapping image-plane coordinates to RGB."""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..model import Model
from ..reference.gigapixel import pixel_step
from ..shaders import compile_shader
from ..vk.compute import compute_barrier, create_bound_pipeline
from ..vk.device import Device
from ..vk.resources import STORAGE, Buffer
from .field import FieldResources, choose_variant

SHADER = "fused/gigapixel.comp"
WORKGROUP = 8
PUSH = struct.Struct("<2i2i2f2ff")  # matches `Push` in the shader


@dataclass(frozen=True)
class GigapixelView:
    """Which part of the image plane the frame shows: u right, v down, (0,0,1,1) is the whole image."""

    window: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    background: float = 0.0

    def __post_init__(self) -> None:
        x0, y0, x1, y1 = self.window
        if not (np.isfinite(self.window).all() and x1 > x0 and y1 > y0):
            raise ConfigError(f"view window {self.window} must be finite with x1 > x0 and y1 > y0")


def check_model(model: Model) -> None:
    if model.app != "gigapixel":
        raise ConfigError(f"model is for app {model.app!r}, not gigapixel")
    if model.n_input_dims != 2 or model.n_output_dims != 3:
        raise ConfigError(f"a gigapixel model maps 2 inputs to 3 outputs, this one {model.n_input_dims} -> "
                          f"{model.n_output_dims}")


class GigapixelApp:
    """Owns the fused GIA pipeline, the model's GPU resources and one tile-sized output buffer."""

    name = "gigapixel"
    kernel_label = "gigapixel_fused"

    def __init__(self, device: Device, model: Model, variant: str = "auto",
                 max_tile: tuple[int, int] = (1024, 1024)) -> None:
        check_model(model)
        self.device, self.model, self.max_tile = device, model, max_tile
        self.variant = choose_variant(device, variant)
        self.field = self.output = self.pipeline = None
        try:
            self.field = FieldResources(device, model, self.variant)
            self.output = Buffer(device, max_tile[0] * max_tile[1] * 4, (STORAGE,), host=True)
            spirv = compile_shader(SHADER, self.field.defines(), self.field.generated())
            bindings = self.field.bindings()
            bindings[1] = (STORAGE, self.output)
            self.pipeline = create_bound_pipeline(device, spirv, bindings, PUSH.size, self.kernel_label)
        except BaseException:
            self.destroy()
            raise

    def default_view(self) -> GigapixelView:
        return GigapixelView()

    def samples(self, width: int, height: int) -> int:
        """Network evaluations per frame (one per pixel)."""
        return width * height

    def record_tile(self, cmd, view: GigapixelView, frame: tuple[int, int], origin: tuple[int, int],
                    size: tuple[int, int]) -> None:
        du, dv = pixel_step(frame[0], frame[1], view.window)
        push = PUSH.pack(origin[0], origin[1], size[0], size[1], view.window[0],
                           view.window[1], du, dv, view.background)
        groups = (-(-size[0] // WORKGROUP), -(-size[1] // WORKGROUP), 1)
        self.pipeline.record(cmd, groups, push)
        compute_barrier(self.device, cmd)

    def read_tile(self, size: tuple[int, int]) -> np.ndarray:
        w, h = size
        return self.output.array(np.uint8, w * h * 4).reshape(h, w, 4)[..., :3].copy()

    def destroy(self) -> None:
        for obj in (self.pipeline, self.output, self.field):
            if obj is not None:
                obj.destroy()
