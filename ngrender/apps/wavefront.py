"""The unfused pipelines: a frame's stages as separate dispatches over rays kept in buffers, structured like
instant-ngp's testbed and tiny-cuda-nn (the paper's GPU baseline).

``unfused``: ray initialisation; then, until no ray is left, sample generation (up to ``samples_per_step``
samples per live ray, more as fewer rays live, as instant-ngp's steps between compactions), input encoding
(level-major, one invocation per sample and level), direction encoding (NeRF), one MLP dispatch per network
(or per layer), compositing, compaction of the live rays; finally shading. ``fused-rest``: the encoding and
MLP dispatches stay, everything else is one kernel per iteration (shaders/unfused/rest_fused.comp). ``ngpc``:
fused-rest with the encoding and MLP run as the NGPC's engines would (shaders/ngpc/, ngrender/ngpc/), and the
frame's projected NGPC time in FrameStats.ngpc_ms.

Both run the ray logic of the fused kernel (shaders/lib/ray_<app>.glsl), so they draw the same image. The
host reads back the live-ray count after each iteration, as instant-ngp does, to size the next dispatches.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .. import glslgen, shader_interface
from ..errors import ConfigError
from ..shader_interface import BINDINGS
from ..shaders import compile_shader
from ..vk.compute import create_bound_pipeline
from ..vk.resources import STORAGE, Buffer

GROUP = 64
ENCODE_DISPATCHES = ("auto", "level", "sample")
RAY_BYTES = 64  # every ray_<app>.glsl keeps its Ray within four vec4s
CONTROL_FIELDS = tuple(name for name, _ in shader_interface.CONTROL_FIELDS)


def _bind(**resources) -> dict[int, tuple[str, object]]:
    """Pipeline bindings from declared binding names (shader_interface.BINDINGS); None: not bound."""
    return dict(BINDINGS[name].bind(res) for name, res in resources.items() if res is not None)


def _field_bindings(field, part: str) -> dict[int, tuple[str, object]]:
    """The field's grid or MLP-weights binding (none for weights of the baked variant)."""
    slot = shader_interface.Slot.GRID if part == "grid" else shader_interface.Slot.WEIGHTS
    return {s: b for s, b in field.bindings().items() if s == slot}


def _groups(n: int) -> int:
    return max(1, -(-n // GROUP))


class Wavefront:
    """Buffers and stage kernels of one app's unfused pipeline (``app.pipeline_name``: unfused / fused-rest)."""

    def __init__(self, app) -> None:
        self.app, self.device = app, app.device
        field, model = app.field, app.model
        self.capacity = cap = app.max_tile[0] * app.max_tile[1]
        self.nerf = model.rgb_net is not None
        self.k_max = app.samples_per_step
        self.ngpc = app.pipeline_name == "ngpc"
        self.arch = None
        if self.ngpc:
            from ..ngpc.arch import load_arch
            self.arch = app.ngpc_arch or load_arch()
        if app.encode_dispatch not in ENCODE_DISPATCHES:
            raise ConfigError(f"unknown encoding dispatch {app.encode_dispatch!r}; choose one of "
                              f"{', '.join(ENCODE_DISPATCHES)}")
        # tcnn's one invocation per (sample, level) on GPUs; per sample on CPU drivers (6x faster on lavapipe)
        self.encode_per_level = app.encode_dispatch == "level" or \
            (app.encode_dispatch == "auto" and not self.device.info.is_cpu)
        if self.ngpc:  # the engines: one per level for hash grids, dense grids parallelised over inputs
            self.encode_per_level = any(lv.hashed for lv in model.geometry.levels)
        vec4s = 2 if self.nerf else 1  # NeRF samples also carry the ray direction (colour network input)
        self._owned: list = []
        self.mlp_stages: list[tuple[str, object]] = []
        try:
            def buffer(nbytes: int, host: bool = False) -> Buffer:
                return self._own(Buffer(self.device, max(nbytes, 16), (STORAGE,), host=host))

            self.control = buffer(4 * len(CONTROL_FIELDS), host=True)
            self.rays, self.flags = buffer(cap * RAY_BYTES), buffer(cap * 4)
            self.lists, self.samples = buffer(2 * cap * 4), buffer(2 * cap * vec4s * 16)
            geom = model.geometry
            self.features = buffer(geom.n_levels * geom.n_features * cap * 4)
            self.net_out = buffer(model.n_output_dims * cap * 4)
            self.defines = {**app.defines(), "SAMPLE_CAPACITY": cap, "SAMPLE_VEC4S": vec4s,
                            "RESULT_FROM_DENSITY": int(self.nerf)}
            if self.ngpc:
                self.defines.update(STORE_HALF=int(self.arch.storage_precision == "fp16"),
                                    ACC_HALF=int(self.arch.accumulate_precision == "fp16"),
                                    MAC_ROWS=self.arch.mac_rows)
            self._build_stages(field, buffer)
        except BaseException:
            self.destroy()
            raise

    def _own(self, obj):
        self._owned.append(obj)
        return obj

    def _kernel(self, shader: str, label: str, bindings: dict, generated: dict[str, str], push_size: int = 0,
                defines: dict | None = None):
        path = shader if "/" in shader else f"unfused/{shader}.comp"
        spirv = compile_shader(path, {**self.defines, **(defines or {})}, generated)
        return self._own(create_bound_pipeline(self.device, spirv, bindings, push_size, label))

    def _build_stages(self, field, buffer: Callable[[int], Buffer]) -> None:
        app = self.app
        shared = _bind(ctl=self.control, samples=self.samples)
        rest = {**shared, **_bind(out_rgba=app.output, rays=self.rays, ray_flags=self.flags, lists=self.lists,
                                 net_out=self.net_out)}
        if field.occupancy is not None:
            rest.update(_bind(occupancy=field.occupancy))
        if self.nerf:
            self.density_out = buffer(app.model.layers[-1].shape[0] * self.capacity * 4)
            self.sh_features = buffer(app.model.sh_degree ** 2 * self.capacity * 4)
            rest.update(_bind(net_density=self.density_out))
        app_code = {"generated/app.glsl": f'#include "ray_{app.name}.glsl"\n'}
        names = ("rest_fused",) if app.pipeline_name in ("fused-rest", "ngpc") else \
            ("ray_init", "generate", "composite", "compact", "shade")
        self.rest = {name: self._kernel(name, f"rest/{name}", rest, app_code, app.push.size) for name in names}

        self.encode = self._kernel("ngpc/encode.comp" if self.ngpc else "encode", "encoding/grid",
                                   {**shared, **_field_bindings(field, "grid"), **_bind(features=self.features)},
                                   field.generated(networks=False),
                                   defines={"ENCODE_PER_LEVEL": int(self.encode_per_level)})
        self.sh = None
        if self.nerf:
            self.sh = self._kernel("sh_encode", "encoding/sh", {**shared, **_bind(encoded=self.sh_features)}, {})
        self._build_mlps(field, buffer)

    def _build_mlps(self, field, buffer: Callable[[int], Buffer]) -> None:
        """One dispatch per network (or per layer); NeRF: density network, then colour network on
        [density outputs, SH(direction)]."""
        if self.nerf:
            plan = [("density", "mlp_forward", (self.features, None), self.density_out),
                    ("colour", "rgb_forward", (self.density_out, self.sh_features), self.net_out)]
        else:
            plan = [("network", "mlp_forward", (self.features, None), self.net_out)]
        networks = {name: (layers, act) for name, layers, act in field.networks()}
        if self.ngpc:
            for label, function, (in_a, in_b), out in plan:
                self.mlp_stages.append((f"mlp/{label}", self._ngpc_mlp(label, *networks[function], in_a, in_b, out)))
            return
        if self.app.mlp_dispatch == "coopmat":
            for label, function, (in_a, in_b), out in plan:
                layers, act = networks[function]
                self.mlp_stages.append((f"mlp/{label}", self._coopmat_mlp(label, layers, act, in_a, in_b, out,
                                                                            buffer)))
            return
        hidden = []
        if self.app.mlp_dispatch == "layer":
            width = max(w.shape[0] for layers, _ in networks.values() for w in layers[:-1])
            hidden = [buffer(width * self.capacity * 4) for _ in range(2)]
        for label, function, (in_a, in_b), out in plan:
            layers, act = networks[function]
            steps = [(None, layers, act)] if self.app.mlp_dispatch == "network" else \
                [(i, [w], act if i == len(layers) - 1 else "relu") for i, w in enumerate(layers)]
            for index, chunk, chunk_act in steps:
                first, last = index in (None, 0), index is None or index == len(layers) - 1
                src = (in_a, in_b) if first else (hidden[(index - 1) % 2], None)
                dst = out if last else hidden[index % 2]
                n_in_b = self.app.model.sh_degree ** 2 if first and src[1] is not None else 0
                code = '#include "activation.glsl"\n' + field.network_code(
                    chunk, chunk_act, "net_forward", field.vec4_offset(function, index or 0))
                bindings = _bind(ctl=self.control, in_a=src[0], in_b=src[1], net_y=dst)
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
        n_in_b = self.app.model.sh_degree ** 2 if in_b is not None else 0
        bindings = _bind(ctl=self.control, in_a=in_a, in_b=in_b, net_y=out, w_words=w)
        defines = {"NET_IN_A": layers[0].shape[1] - n_in_b, "NET_IN_B": n_in_b, "NET_OUT": layers[-1].shape[0],
                   "NET_ACT": f"act_{activation}", "COOPMAT": int(self.device.cooperative_matrix)}
        return self._kernel("coopmat/mlp.comp", f"mlp/{label}", bindings, {"generated/coopmat_layers.glsl": table},
                            defines=defines)

    def _ngpc_mlp(self, label: str, layers: list[np.ndarray], activation: str, in_a: Buffer, in_b: Buffer | None,
                  out: Buffer):
        """The NGPC MLP engine for one network: weights (out x in, row-major, at the storage precision) in a
        storage buffer, layer shapes as constants."""
        flat = np.concatenate([np.asarray(w, np.float32).ravel() for w in layers])
        if self.arch.storage_precision == "fp16":
            flat = flat.astype(np.float16).astype(np.float32)
        weights = self._own(Buffer(self.device, flat.nbytes, (STORAGE,), host=False))
        weights.write(flat)
        code = glslgen.ngpc_layers(layers, activation)
        n_in_b = self.app.model.sh_degree ** 2 if in_b is not None else 0
        bindings = _bind(ctl=self.control, in_a=in_a, in_b=in_b, net_y=out, weights=weights)
        defines = {"NET_IN_A": layers[0].shape[1] - n_in_b, "NET_IN_B": n_in_b, "NET_OUT": layers[-1].shape[0]}
        return self._kernel("ngpc/mlp.comp", f"mlp/{label}", bindings, {"generated/layers.glsl": code},
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
        geom = self.app.model.geometry
        levels = geom.n_levels if self.encode_per_level else 1
        rec.dispatch("encoding/grid", self.encode, (_groups(n_samples), levels, 1))
        if self.sh is not None:
            rec.dispatch("encoding/sh", self.sh, (_groups(n_samples), 1, 1))
        for label, kernel in self.mlp_stages:
            rec.dispatch(label, kernel, (_groups(n_samples), 1, 1))

    def run_tile(self, submit: Callable, push: bytes, size: tuple[int, int], stats) -> None:
        if self.app.pipeline_name in ("fused-rest", "ngpc"):
            self._run_fused_rest(submit, push, size[0] * size[1], stats)
        else:
            self._run_unfused(submit, push, size[0] * size[1], stats)

    def _run_unfused(self, submit: Callable, push: bytes, pixels: int, stats) -> None:
        rest, cap = self.rest, self.capacity
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
            stats.samples += n_samples
            stats.iterations += 1
            live, side = self._live(), 1 - side
        self._set(n_in=pixels)
        submit(lambda rec: rec.dispatch("rest/shade", rest["shade"], (_groups(pixels), 1, 1), push))

    def _run_fused_rest(self, submit: Callable, push: bytes, pixels: int, stats) -> None:
        kernel, cap = self.rest["rest_fused"], self.capacity
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
            stats.samples += n_samples
            stats.iterations += 1
            live, side, k = self._live(), 1 - side, k_next

    def finish_frame(self, stats) -> None:
        """NGPC: the frame's projected time from its work and its measured rest-of-kernels time."""
        if not self.ngpc or stats.samples == 0:
            return
        from ..ngpc.timing import Workload, project

        work = Workload.from_model(self.app.model, stats.samples, self.arch.bytes_per_value())
        rest = stats.class_ms()["rest"]
        stats.ngpc_ms = project(self.arch, work, max(stats.gpu_ms, rest, 1e-9), rest).frame_ms

    def read(self, buffer: Buffer, rows: int, n: int) -> np.ndarray:
        """A feature-major buffer's first ``n`` samples as (n, rows) float32 (tests, debugging)."""
        data = buffer.read(np.float32, rows * self.capacity).reshape(rows, self.capacity)
        return data[:, :n].T.copy()

    def destroy(self) -> None:
        for obj in reversed(self._owned):
            obj.destroy()
        self._owned = []
