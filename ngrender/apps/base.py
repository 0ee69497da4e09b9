"""What every fused app shares: the field's GPU resources, one tile-sized RGBA8 output buffer, one pipeline."""
from __future__ import annotations

import dataclasses
import struct
from typing import Any, Callable, Mapping

import numpy as np

from ..camera import Camera, camera_from_json
from ..errors import ConfigError
from ..model import Model
from ..shaders import compile_shader
from ..vk.compute import compute_barrier, create_bound_pipeline
from ..vk.device import Device
from ..vk.resources import STORAGE, Buffer
from .field import FieldResources, choose_variant

WORKGROUP = 8
OUTPUT_BINDING = 1


class FusedApp:
    """Subclasses set ``name``, ``shader``, ``push`` (a struct.Struct matching the shader's push block),
    ``n_input_dims``/``n_output_dims``, ``view_class`` (+ ``modes``, ``view_rules``) and implement
    ``push_values``."""

    name = "app"
    shader = ""
    push: struct.Struct
    n_input_dims = 0
    n_output_dims = 0
    extra_defines: Mapping[str, int] = {}

    def __init__(self, device: Device, model: Model, variant: str = "auto",
                 max_tile: tuple[int, int] = (1024, 1024)) -> None:
        self.check_model(model)
        self.device, self.model, self.max_tile = device, model, max_tile
        self.variant = choose_variant(device, variant)
        self.kernel_label = f"{self.name}_fused"
        self.field = self.output = self.pipeline = None
        try:
            self.field = FieldResources(device, model, self.variant)
            self.output = Buffer(device, max_tile[0] * max_tile[1] * 4, (STORAGE,), host=True)
            defines = {**self.field.defines(), **self.extra_defines}
            spirv = compile_shader(self.shader, defines, self.field.generated())
            bindings = self.field.bindings()
            bindings[OUTPUT_BINDING] = (STORAGE, self.output)
            self.pipeline = create_bound_pipeline(device, spirv, bindings, self.push.size, self.kernel_label)
        except BaseException:
            self.destroy()
            raise

    @classmethod
    def check_model(cls, model: Model) -> None:
        if model.app != cls.name:
            raise ConfigError(f"model is for app {model.app!r}, not {cls.name}")
        if model.n_input_dims != cls.n_input_dims or model.n_output_dims != cls.n_output_dims:
            raise ConfigError(f"a {cls.name} model maps {cls.n_input_dims} inputs to {cls.n_output_dims} outputs, "
                              f"this one {model.n_input_dims} -> {model.n_output_dims}")

    view_class: type  # a frozen dataclass whose defaults are the app's default view
    modes: Mapping[str, int] = {}
    # field -> (test, what it must be): range checks applied to every view
    view_rules: Mapping[str, tuple[Callable[[Any], bool], str]] = {}

    @property
    def view_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.view_class))

    def make_view(self, settings: Mapping[str, Any]):
        """The app's view from scene/CLI settings, each field converted to its default's type and checked;
        unknown fields are errors (typos do not pass silently)."""
        unknown = set(settings) - set(self.view_fields)
        if unknown:
            raise ConfigError(f"unknown {self.name} view field(s) {sorted(unknown)}; "
                              f"allowed {sorted(self.view_fields)}")
        defaults = self.view_class()
        values = {name: self._convert(name, raw, getattr(defaults, name)) for name, raw in settings.items()}
        view = dataclasses.replace(defaults, **values)
        for name, (ok, rule) in self.view_rules.items():
            if not ok(getattr(view, name)):
                raise ConfigError(f"{self.name} view: {name} must be {rule}, got {getattr(view, name)!r}")
        return view

    def _convert(self, name: str, raw: Any, default: Any) -> Any:
        if name == "camera":
            return camera_from_json(raw, f"{self.name} view camera")
        if name == "mode":
            if raw not in self.modes:
                raise ConfigError(f"{self.name} render mode {raw!r} is not one of {list(self.modes)}")
            return raw
        try:
            if isinstance(default, bool):
                return bool(raw)
            if isinstance(default, (int, float)):
                return type(default)(raw)
            if isinstance(default, tuple):
                value = tuple(float(v) for v in raw)
                if len(value) != len(default):
                    raise ValueError(f"needs {len(default)} numbers, got {len(value)}")
                return value
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{self.name} view field {name}: {exc}") from None
        raise ConfigError(f"{self.name} view field {name} cannot be set")

    def default_view(self):
        return self.make_view({})


    def push_values(self, view, frame: tuple[int, int], origin: tuple[int, int],
                    size: tuple[int, int]) -> tuple:  # pragma: no cover - overridden
        raise NotImplementedError

    def samples(self, width: int, height: int) -> int:
        """Network evaluations per frame when known in advance (pixels for GIA), else rays."""
        return width * height

    def record_tile(self, cmd, view, frame: tuple[int, int], origin: tuple[int, int], size: tuple[int, int]) -> None:
        push = self.push.pack(*self.push_values(view, frame, origin, size))
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
        self.pipeline = self.output = self.field = None


def camera_push(camera: Camera, w: tuple[float, float, float, float]) -> tuple[float, ...]:
    """The 3D kernels' first 64 push bytes: camera x, y, z axes and origin as vec4s, with ``w`` in the .w slots."""
    c2w = camera.c2w
    return tuple(v for i in range(4) for v in (*c2w[:3, i], w[i]))
