"""The unfused pipelines: a frame's stages as separate dispatches over rays kept in buffers, structured like
instant-ngp's testbed and tiny-cuda-nn (the paper's GPU baseline).

``unfused``: ray initialisation; then, until no ray is left, sample generation (up to ``samples_per_step``
samples per live ray, more as fewer rays live, as instant-ngp's steps between compactions), input encoding
(level-major, one invocation per sample and level), direction encoding (NeRF), one MLP dispatch per network
(or per layer), compositing, compaction of the live rays; finally shading. ``fused-rest``: the encoding and
MLP dispatches stay, everything else is one kernel per iteration (shaders/unfused/rest_fused.comp). The
``ngpc`` pipeline is fused-rest with the NGPC's engines as encoding and MLP: ngpc.wavefront.NgpcWavefront.

Every stage runs the ray logic of the fused kernel (shaders/lib/ray_<app>.glsl), so they draw the same image.
The host reads back the live-ray count after each iteration, as instant-ngp does, to size the next dispatches.
The app describes what the stages need in a WavefrontSpec; a tile returns its work (TileWork) to the Renderer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from .. import glslgen, shader_interface
from ..errors import ConfigError
from ..shader_interface import BINDINGS
from ..shaders import compile_shader
from ..vk.compute import create_bound_pipeline
from ..vk.device import Device
from ..vk.live import Owner
from ..vk.resources import STORAGE, Buffer
from .field import FieldResources

GROUP = 64
ENCODE_INVOCATIONS = ("auto", "level", "sample")
RAY_BYTES = 64  # every ray_<app>.glsl keeps its Ray within four vec4s
CONTROL_FIELDS = tuple(name for name, _ in shader_interface.CONTROL_FIELDS)


def bind(**resources) -> dict[int, tuple[str, object]]:
    """Pipeline bindings from declared binding names (shader_interface.BINDINGS); None: not bound. The stages
    of the unfused pipelines and their subclasses (ngpc.wavefront) bind with it."""
    return dict(BINDINGS[name].bind(res) for name, res in resources.items() if res is not None)


def _field_bindings(field, part: str) -> dict[int, tuple[str, object]]:
    """The field's grid or MLP-weights binding (none for weights of the baked variant)."""
    slot = shader_interface.Slot.GRID if part == "grid" else shader_interface.Slot.WEIGHTS
    return {s: b for s, b in field.bindings().items() if s == slot}


def _groups(n: int) -> int:
    return max(1, -(-n // GROUP))


@dataclass(frozen=True)
class WavefrontSpec:
    """What the unfused stages need from their app, built by the app (App.wavefront_spec)."""

    device: Device
    field: FieldResources          # the model's grid and networks on the device (field.model: the model)
    output: Buffer                 # the tile's RGBA8 output (binding 1)
    app: str                       # the ray code: shaders/lib/ray_<app>.glsl
    push_size: int                 # bytes of the app's push block (the same for every stage)
    defines: Mapping[str, int | str]  # the app's shader defines (field + app)
    tile: tuple[int, int]          # the largest tile: one ray per pixel sizes every buffer
    samples_per_step: int          # most samples a ray takes per iteration (instant-ngp: 8 for NeRF)
    pipeline: str = "unfused"      # unfused (every stage a dispatch) or fused-rest (encoding + MLP separate)
    mlp_dispatch: str = "network"  # one MLP dispatch per network or per layer, or coopmat
    encode_invocation: str = "auto"  # one encoding invocation per (sample, level), per sample, or auto


@dataclass(frozen=True)
class TileWork:
    """What one tile's dispatches did, for FrameStats (filled by the Renderer)."""

    samples: int          # network evaluations
    iterations: int = 0   # march iterations (batches) of the unfused pipelines


class Wavefront(Owner):
    """Buffers and stage kernels of one app's unfused pipeline (``spec.pipeline``: unfused / fused-rest).

    Subclasses (ngpc.wavefront.NgpcWavefront) replace the encoding and MLP kernels and may project the frame's
    time; the ray stages, buffers and the per-tile loop stay here. An Owner (vk.live): its buffers and kernels
    are released together, in reverse, on destroy() or when building them fails."""

    encode_shader = "encode"  # the grid-encoding kernel (shaders/unfused/encode.comp)

    def _create(self, spec: WavefrontSpec) -> None:
        self.spec, self.device = spec, spec.device
        field, model = spec.field, spec.field.model
        self.model = model
        self.capacity = cap = spec.tile[0] * spec.tile[1]
        self.nerf = model.rgb_net is not None
        self.k_max = spec.samples_per_step
        if spec.encode_invocation not in ENCODE_INVOCATIONS:
            raise ConfigError(f"unknown encoding invocation {spec.encode_invocation!r}; choose one of "
                              f"{', '.join(ENCODE_INVOCATIONS)}")
        self.encode_per_level = self._encode_per_level()
        vec4s = 2 if self.nerf else 1  # NeRF samples also carry the ray direction (colour network input)
        self.mlp_stages: list[tuple[str, object]] = []

        def buffer(nbytes: int, host: bool = False) -> Buffer:
            return self.own(Buffer(self.device, max(nbytes, 16), (STORAGE,), host=host))

        self.control = buffer(4 * len(CONTROL_FIELDS), host=True)
        self.rays, self.flags = buffer(cap * RAY_BYTES), buffer(cap * 4)
        self.lists, self.samples = buffer(2 * cap * 4), buffer(2 * cap * vec4s * 16)
        geom = model.geometry
        self.features = buffer(geom.n_levels * geom.n_features * cap * 4)
        self.net_out = buffer(model.n_output_dims * cap * 4)
        self.defines = {**spec.defines, "SAMPLE_CAPACITY": cap, "SAMPLE_VEC4S": vec4s,
                        "RESULT_FROM_DENSITY": int(self.nerf), **self._extra_defines()}
        self._build_stages(field, buffer)

    # -- what a subclass may replace ----------------------------------------------------------------------
    @property
    def fused_rest(self) -> bool:
        """Everything but the encoding and MLP as one kernel per iteration (shaders/unfused/rest_fused.comp)."""
        return self.spec.pipeline == "fused-rest"

    def _encode_per_level(self) -> bool:
        """tcnn's one invocation per (sample, level) on GPUs; per sample on CPU drivers (6x faster on lavapipe)."""
        invocation = self.spec.encode_invocation
        return invocation == "level" or (invocation == "auto" and not self.device.info.is_cpu)

    def _extra_defines(self) -> dict[str, int]:
        """Defines every stage kernel gets beyond the app's."""
        return {}

    def projected(self, stats) -> tuple[str, float] | None:
        """(simulated device, its frame time in ms) for the finished frame's work; None: nothing simulated."""
        return None

    def _kernel(self, shader: str, label: str, bindings: dict, generated: dict[str, str], push_size: int = 0,
                defines: dict | None = None):
        path = shader if "/" in shader else f"unfused/{shader}.comp"
        spirv = compile_shader(path, {**self.defines, **(defines or {})}, generated)
        return self.own(create_bound_pipeline(self.device, spirv, bindings, push_size, label))

    def _build_stages(self, field: FieldResources, buffer: Callable[[int], Buffer]) -> None:
        spec = self.spec
        shared = bind(ctl=self.control, samples=self.samples)
        rest = {**shared, **bind(out_rgba=spec.output, rays=self.rays, ray_flags=self.flags, lists=self.lists,
                                 net_out=self.net_out)}
        if field.occupancy is not None:
            rest.update(bind(occupancy=field.occupancy))
        if self.nerf:
            self.density_out = buffer(self.model.layers[-1].shape[0] * self.capacity * 4)
            self.sh_features = buffer(self.model.sh_degree ** 2 * self.capacity * 4)
            rest.update(bind(net_density=self.density_out))
        app_code = {"generated/app.glsl": f'#include "ray_{spec.app}.glsl"\n'}
        names = ("rest_fused",) if self.fused_rest else ("ray_init", "generate", "composite", "compact", "shade")
        self.rest = {name: self._kernel(name, f"rest/{name}", rest, app_code, spec.push_size) for name in names}

        self.encode = self._kernel(self.encode_shader, "encoding/grid",
                                   {**shared, **_field_bindings(field, "grid"), **bind(features=self.features)},
                                   field.generated(networks=False),
                                   defines={"ENCODE_PER_LEVEL": int(self.encode_per_level)})
        self.sh = None
        if self.nerf:
            self.sh = self._kernel("sh_encode", "encoding/sh", {**shared, **bind(encoded=self.sh_features)}, {})
        self._build_mlps(field, buffer)

    def _mlp_plan(self) -> list[tuple[str, str, tuple[Buffer, Buffer | None], Buffer]]:
        """(label, network function, inputs, output) per network; NeRF: density network, then colour network
        on [density outputs, SH(direction)]."""
        if self.nerf:
            return [("density", "mlp_forward", (self.features, None), self.density_out),
                    ("colour", "rgb_forward", (self.density_out, self.sh_features), self.net_out)]
        return [("network", "mlp_forward", (self.features, None), self.net_out)]

    def _n_in_b(self, in_b: Buffer | None) -> int:
        """Inputs of a network from its second buffer (NeRF's colour network: the SH coefficients)."""
        return self.model.sh_degree ** 2 if in_b is not None else 0

    def _build_mlps(self, field: FieldResources, buffer: Callable[[int], Buffer]) -> None:
        """One dispatch per network (or per layer, or a cooperative-matrix kernel per network)."""
        plan = self._mlp_plan()
        networks = {name: (layers, act) for name, layers, act in field.networks()}
        dispatch = self.spec.mlp_dispatch
        if dispatch == "coopmat":
            for label, function, (in_a, in_b), out in plan:
                layers, act = networks[function]
                self.mlp_stages.append((f"mlp/{label}", self._coopmat_mlp(label, layers, act, in_a, in_b, out,
                                                                            buffer)))
            return
        hidden = []
        if dispatch == "layer":
            width = max(w.shape[0] for layers, _ in networks.values() for w in layers[:-1])
            hidden = [buffer(width * self.capacity * 4) for _ in range(2)]
        for label, function, (in_a, in_b), out in plan:
            layers, act = networks[function]
            steps = [(None, layers, act)] if dispatch == "network" else \
                [(i, [w], act if i == len(layers) - 1 else "relu") for i, w in enumerate(layers)]
            for index, chunk, chunk_act in steps:
                first, last = index in (None, 0), index is None or index == len(layers) - 1
                src = (in_a, in_b) if first else (hidden[(index - 1) % 2], None)
                dst = out if last else hidden[index % 2]
                n_in_b = self._n_in_b(src[1]) if first else 0
                code = '#include "activation.glsl"\n' + field.network_code(
                    chunk, chunk_act, "net_forward", field.vec4_offset(function, index or 0))
                bindings = bind(ctl=self.control, in_a=src[0], in_b=src[1], net_y=dst)
                bindings.update(_field_bindings(field, "weights"))
                name = f"mlp/{label}" if index is None else f"mlp/{label}.{index}"
                defines = {"NET_IN_A": chunk[0].shape[1] - n_in_b, "NET_IN_B": n_in_b, "NET_OUT": chunk[-1].shape[0]}
                self.mlp_stages.append((name, self._kernel("mlp", name, bindings, {"generated/net.glsl": code},
                                                           defines=defines)))

    def _coopmat_mlp(self, label: str, layers: list[np.ndarray], activation: str, in_a: Buffer,
                     in_b: Buffer | None, out: Buffer, buffer: Callable[[int], Buffer]):
        """One network as shaders/coopmat/mlp.comp: cooperative matrices where the device has them, else the
        same tiles with scalar arithmetic."""
        table, weights = glslgen.coopmat_weights(layers)
        w = buffer(weights.nbytes)
        w.write(weights)
        n_in_b = self._n_in_b(in_b)
        bindings = bind(ctl=self.control, in_a=in_a, in_b=in_b, net_y=out, w_words=w)
        defines = {"NET_IN_A": layers[0].shape[1] - n_in_b, "NET_IN_B": n_in_b, "NET_OUT": layers[-1].shape[0],
                   "NET_ACT": f"act_{activation}", "COOPMAT": int(self.device.cooperative_matrix)}
        return self._kernel("coopmat/mlp.comp", f"mlp/{label}", bindings, {"generated/coopmat_layers.glsl": table},
                            defines=defines)

    # -- one tile ---------------------------------------------------------------------------------------
    def _set(self, **values: int) -> None:
        words = self.control.array(np.uint32, len(CONTROL_FIELDS))
        for name, value in values.items():
            words[CONTROL_FIELDS.index(name)] = value

    def _live(self) -> int:
        return int(self.control.array(np.uint32, len(CONTROL_FIELDS))[CONTROL_FIELDS.index("n_out")])

    def _k(self, rays: int, pixels: int) -> int:
        """Samples per ray this iteration: more as fewer rays live, so a batch stays near the tile's pixel count
        (instant-ngp: n_elements / n_alive, clamped to [1, 8])."""
        return min(self.k_max, max(1, pixels // max(rays, 1)))

    def _record_field(self, rec, n_samples: int) -> None:
        """Encoding and MLP dispatches over the batch."""
        levels = self.model.geometry.n_levels if self.encode_per_level else 1
        rec.dispatch("encoding/grid", self.encode, (_groups(n_samples), levels, 1))
        if self.sh is not None:
            rec.dispatch("encoding/sh", self.sh, (_groups(n_samples), 1, 1))
        for label, kernel in self.mlp_stages:
            rec.dispatch(label, kernel, (_groups(n_samples), 1, 1))

    def run_tile(self, submit: Callable, push: bytes, size: tuple[int, int]) -> TileWork:
        """Render one tile; ``submit(record)`` runs ``record(recording)`` on the device (vk.timing)."""
        run = self._run_fused_rest if self.fused_rest else self._run_unfused
        return run(submit, push, size[0] * size[1])

    def _run_unfused(self, submit: Callable, push: bytes, pixels: int) -> TileWork:
        rest, cap = self.rest, self.capacity
        samples = iterations = 0
        self._set(n_in=pixels, n_out=0, list_out=0, first=1)
        submit(lambda rec: rec.dispatch("rest/ray_init", rest["ray_init"], (_groups(pixels), 1, 1), push))
        live, side = self._live(), 0
        while live:
            k = self._k(live, pixels)
            n_samples = live * k
            self._set(n_in=live, n_out=0, k_in=k, k_out=k, samples_in=0, samples_out=0, list_in=side * cap,
                      list_out=(1 - side) * cap, n_samples=n_samples, first=0)

            def record(rec, live=live, n_samples=n_samples) -> None:
                groups = (_groups(live), 1, 1)
                rec.dispatch("rest/generate", rest["generate"], groups, push)
                self._record_field(rec, n_samples)
                rec.dispatch("rest/composite", rest["composite"], groups, push)
                rec.dispatch("rest/compact", rest["compact"], groups, push)

            submit(record)
            samples, iterations = samples + n_samples, iterations + 1
            live, side = self._live(), 1 - side
        self._set(n_in=pixels)
        submit(lambda rec: rec.dispatch("rest/shade", rest["shade"], (_groups(pixels), 1, 1), push))
        return TileWork(samples, iterations)

    def _run_fused_rest(self, submit: Callable, push: bytes, pixels: int) -> TileWork:
        kernel, cap = self.rest["rest_fused"], self.capacity
        samples = iterations = 0
        k = self._k(pixels, pixels)
        self._set(n_in=pixels, n_out=0, k_in=0, k_out=k, samples_out=0, list_out=0, first=1)
        submit(lambda rec: rec.dispatch("rest/fused", kernel, (_groups(pixels), 1, 1), push))
        live, side = self._live(), 0  # side: the half of the sample and list buffers holding the new batch
        while live:
            k_next, n_samples = self._k(live, pixels), live * k
            self._set(n_in=live, n_out=0, k_in=k, k_out=k_next, samples_in=side * cap, samples_out=(1 - side) * cap,
                      list_in=side * cap, list_out=(1 - side) * cap, n_samples=n_samples, first=0)

            def record(rec, live=live, n_samples=n_samples) -> None:
                self._record_field(rec, n_samples)
                rec.dispatch("rest/fused", kernel, (_groups(live), 1, 1), push)

            submit(record)
            samples, iterations = samples + n_samples, iterations + 1
            live, side, k = self._live(), 1 - side, k_next
        return TileWork(samples, iterations)

    def read(self, buffer: Buffer, rows: int, n: int) -> np.ndarray:
        """A feature-major buffer's first ``n`` samples as (n, rows) float32 (tests, debugging)."""
        data = buffer.read(np.float32, rows * self.capacity).reshape(rows, self.capacity)
        return data[:, :n].T.copy()
