"""What every app shares: the field's GPU resources, one tile-sized RGBA8 output buffer, and either the fused
kernel (one dispatch per tile) or the unfused pipelines' stages (apps/wavefront.py)."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import numpy as np

from ..camera import Camera, camera_from_json
from .. import validate
from ..errors import ConfigError
from ..limits import check_device_buffer
from ..model import Model
from ..shader_interface import BINDINGS, PushBlock
from ..shaders import compile_shader
from ..vk.compute import create_bound_pipeline
from ..vk.device import Device, DeviceInfo
from ..vk.live import Owner
from ..vk.resources import STORAGE, Buffer
from .field import SHARED_VARIANTS, FieldResources, choose_variant, shared_weight_bytes
from .wavefront import TileWork, Wavefront, WavefrontSpec

PIPELINES = ("fused", "unfused", "fused-rest", "ngpc")
MLP_DISPATCHES = ("network", "layer", "coopmat")
# The unfused pipelines keep per-ray state, samples and features in buffers sized by the tile: cap the tile
# (512x512 rays: 32 MiB of level-major features for 16 levels x 2 features).
UNFUSED_MAX_TILE = (512, 512)

CPU_WORKGROUP = (8, 8)  # 64 invocations: 8 of lavapipe's 8-lane subgroups, the tile loop's unit
GPU_BATCH = 128  # invocations of a GPU workgroup: tiny-cuda-nn's batch of 128 rows per fused-MLP block


def workgroup_shape(info: DeviceInfo, subgroup_size: int, max_invocations: int) -> tuple[int, int]:
    """The fused kernels' workgroup (x, y) for a device: 8x8 on CPU drivers; on GPUs 16 x 8 = 128 invocations
    (GPU_BATCH, rounded up to whole subgroups, e.g. 2 of AMD's 64 lanes, 4 of NVIDIA's 32), within the device's
    maxComputeWorkGroupInvocations."""
    if info.is_cpu:
        return CPU_WORKGROUP
    invocations = -(-GPU_BATCH // max(subgroup_size, 1)) * max(subgroup_size, 1)
    while invocations > max_invocations and invocations > 64:
        invocations //= 2
    return 16, max(invocations // 16, 1)


class App(Owner):
    """Subclasses set ``name``, ``shader`` (the fused kernel), ``push`` (the app's declared push block:
    shader_interface.PUSH_BLOCKS for the built-in apps; the kernel includes ``push.include``),
    ``n_input_dims``/``n_output_dims``, ``samples_per_step`` (samples a ray may take before it consumes a
    result), ``view_class`` (+ ``modes``, ``view_rules``) and implement
    ``push_values`` (the push block's values by field name). The fused kernel adds its network evaluations to
    the ``evaluations`` binding (one atomicAdd per invocation); ``run_tile`` reads them back and returns them
    in the tile's TileWork (the Renderer adds it to FrameStats).

    ``pipeline``: ``fused`` (one dispatch per tile), ``unfused`` (every stage its own dispatch) or
    ``fused-rest`` (encoding and MLP separate, everything else one kernel) or ``ngpc`` (fused-rest with the
    encoding and MLP as the simulated NGPC's engines). The unfused pipelines' stages are built by
    ``stages(spec)``: apps.wavefront.Wavefront by default; for ngpc, ngpc.wavefront.ngpc_stages(arch), passed
    by whoever chose the NGPC (ngpc.wavefront.pipeline_options). ``mlp_dispatch``: unfused MLPs as one
    dispatch per ``network`` or per ``layer`` (or a cooperative-matrix kernel per network, ``coopmat``);
    ``encode_invocation``: what one invocation of the unfused encoding covers: a (sample, ``level``) pair
    (tcnn), a ``sample``, or ``auto`` (level on GPUs, sample on CPU drivers). The fused path's compiled
    kernel is ``kernel`` (a vk ComputePipeline)."""

    name = "app"
    shader = ""
    push: PushBlock
    n_input_dims = 0
    n_output_dims = 0
    samples_per_step = 1
    extra_defines: Mapping[str, int] = {}

    def _create(self, device: Device, model: Model, variant: str = "auto",
                 max_tile: tuple[int, int] = (1024, 1024), pipeline: str = "fused",
                 mlp_dispatch: str = "network", encode_invocation: str = "auto",
                 stages: Callable[[WavefrontSpec], Wavefront] | None = None,
                 workgroup: tuple[int, int] | None = None) -> None:
        self.check_model(model)
        if pipeline not in PIPELINES:
            raise ConfigError(f"unknown pipeline {pipeline!r}; choose one of {', '.join(PIPELINES)}")
        if pipeline == "ngpc" and stages is None:  # apps do not import ngpc: its stages come from above
            raise ConfigError("the ngpc pipeline needs the NGPC's stages: ngpc.wavefront.pipeline_options('ngpc', "
                              "arch) gives the app's (and RenderSession's) pipeline options")
        if mlp_dispatch not in MLP_DISPATCHES:
            raise ConfigError(f"unknown MLP dispatch {mlp_dispatch!r}; choose one of {', '.join(MLP_DISPATCHES)}")
        if pipeline != "fused":
            max_tile = (min(max_tile[0], UNFUSED_MAX_TILE[0]), min(max_tile[1], UNFUSED_MAX_TILE[1]))
        self.device, self.model, self.max_tile = device, model, max_tile
        self.pipeline, self.mlp_dispatch, self.encode_invocation = pipeline, mlp_dispatch, encode_invocation
        layers = model.layers + (model.rgb_layers or [])
        self.variant = choose_variant(device, variant, shared_weight_bytes(layers, model.storage_dtype == "float16"))
        self.kernel_label = f"fused/{self.name}"
        self.field = self.output = self.kernel = self.wavefront = self.evaluations = None
        check_device_buffer(max_tile[0] * max_tile[1] * 4, int(device.limits.maxStorageBufferRange),
                            f"a {max_tile[0]}x{max_tile[1]} tile's output buffer", "use a smaller --tile")
        self.field = self.own(FieldResources(device, model, self.variant))
        self.output = self.own(Buffer(device, max_tile[0] * max_tile[1] * 4, (STORAGE,), host=True))
        self.workgroup = self._workgroup(workgroup)
        if pipeline == "fused":
            # the push block's declaration goes with the kernel: an app declared outside the package too
            generated = {**self.field.generated(), self.push.include: self.push.glsl()}
            defines = {**self.defines(), "WORKGROUP_X": self.workgroup[0], "WORKGROUP_Y": self.workgroup[1]}
            spirv = compile_shader(self.shader, defines, generated)
            bindings = self.field.bindings()
            # the fused kernel counts its network evaluations on the GPU (how far a ray marches is data)
            self.evaluations = self.own(Buffer(device, 8, (STORAGE,), host=True))
            bindings.update([BINDINGS["out_rgba"].bind(self.output),
                             BINDINGS["evaluations"].bind(self.evaluations)])
            self.kernel = self.own(create_bound_pipeline(device, spirv, bindings, self.push.size, self.kernel_label,
                                                         self._required_subgroup_size()))
        else:
            self.wavefront = self.own((stages or Wavefront)(self.wavefront_spec()))

    def _workgroup(self, requested: tuple[int, int] | None) -> tuple[int, int]:
        """The fused kernel's workgroup: ``requested`` (checked against the device) or workgroup_shape's."""
        limit = int(self.device.limits.maxComputeWorkGroupInvocations)
        if requested is None:
            return workgroup_shape(self.device.info, self.device.subgroup_size, limit)
        x, y = (int(v) for v in requested)
        if x < 1 or y < 1 or x * y > limit:
            raise ConfigError(f"workgroup {x}x{y} is not 1..{limit} invocations (this device's maximum)")
        return x, y

    def _required_subgroup_size(self) -> int | None:
        """The shared variants ask for the device's default subgroup size where the device lets a pipeline fix it
        (subgroup size control), so a workgroup is whole subgroups of one known size; others leave it free."""
        features = self.device.shader_features
        invocations = self.workgroup[0] * self.workgroup[1]
        if self.variant not in SHARED_VARIANTS or not features.subgroup_size_control:
            return None
        if invocations > features.max_workgroup_subgroups * features.subgroup_size:
            return None
        return features.subgroup_size

    def wavefront_spec(self) -> WavefrontSpec:
        """What the unfused pipelines' stages need from this app."""
        return WavefrontSpec(self.device, self.field, self.output, self.name, self.push.size, self.defines(),
                             self.max_tile, self.samples_per_step, self.pipeline, self.mlp_dispatch,
                             self.encode_invocation)

    def defines(self) -> dict[str, int | str]:
        return {**self.field.defines(), **self.extra_defines}

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
        where = f"{self.name} view field {name}"
        if name == "camera":
            return camera_from_json(raw, f"{self.name} view camera")
        if name == "mode":
            return validate.string(raw, f"{self.name} render mode", self.modes)
        return validate.like(raw, default, where)

    def projected(self, stats) -> tuple[str, float] | None:
        """After the last tile: (simulated device, its frame time in ms) for this frame (the ngpc pipeline's)."""
        return self.wavefront.projected(stats) if self.wavefront is not None else None

    def default_view(self):
        return self.make_view({})


    def push_values(self, view, frame: tuple[int, int], origin: tuple[int, int],
                    size: tuple[int, int]) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def run_tile(self, submit: Callable, view, frame: tuple[int, int], origin: tuple[int, int],
                 size: tuple[int, int]) -> TileWork:
        """Render one tile into the output buffer; ``submit(record)`` runs ``record(recording)`` on the device
        with timed dispatches (vk.timing.TimedCommands). Returns the tile's work for FrameStats: the fused kernel
        counts its network evaluations on the GPU."""
        push = self.push.pack(self.push_values(view, frame, origin, size))
        if self.wavefront is not None:
            return self.wavefront.run_tile(submit, push, size)
        groups = (-(-size[0] // self.workgroup[0]), -(-size[1] // self.workgroup[1]), 1)
        self.evaluations.write(np.zeros(2, np.uint32))
        submit(lambda rec: rec.dispatch(self.kernel_label, self.kernel, groups, push))
        low, high = (int(word) for word in self.evaluations.read(np.uint32, 2))
        return TileWork(low + (high << 32))

    def read_tile(self, size: tuple[int, int]) -> np.ndarray:
        return self.tile_rgba(size)[..., :3].copy()

    def tile_rgba(self, size: tuple[int, int]) -> np.ndarray:
        """The last tile's RGBA8 output as a view of the mapped buffer (valid until the next tile runs)."""
        w, h = size
        return self.output.array(np.uint8, w * h * 4).reshape(h, w, 4)


def camera_push(camera: Camera) -> dict[str, tuple[float, float, float]]:
    """The 3D push blocks' camera fields: x, y, z axes and origin in world space."""
    c2w = camera.c2w
    return {name: tuple(c2w[:3, i]) for i, name in enumerate(("cam_x", "cam_y", "cam_z", "cam_o"))}
