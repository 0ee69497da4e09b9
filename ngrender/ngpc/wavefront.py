"""The ``ngpc`` pipeline: the fused-rest pipeline (apps/wavefront.py) with the encoding and MLP run as the
simulated NGPC's engines would (shaders/ngpc/), and the frame's projected NGPC time (timing.py)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .. import glslgen
from ..apps.wavefront import Wavefront, WavefrontSpec, bind
from ..apps.field import FieldResources
from ..errors import ConfigError
from ..vk.resources import STORAGE, Buffer
from .arch import Arch
from .timing import Workload, project

class NgpcWavefront(Wavefront):
    """Fused rest-of-kernels on the GPU beside the NGPC's encoding and MLP engines of ``arch``."""

    encode_shader = "ngpc/encode.comp"

    def _create(self, spec: WavefrontSpec, arch: Arch) -> None:
        self.arch = arch
        super()._create(spec)

    @property
    def fused_rest(self) -> bool:
        return True

    def _encode_per_level(self) -> bool:
        """The engines: one per level for hash grids, dense grids parallelised over inputs."""
        return any(level.hashed for level in self.model.geometry.levels)

    def _extra_defines(self) -> dict[str, int]:
        return {"STORE_HALF": int(self.arch.storage_precision == "fp16"),
                "ACC_HALF": int(self.arch.accumulate_precision == "fp16"), "MAC_ROWS": self.arch.mac_rows}

    def _build_mlps(self, field: FieldResources, buffer: Callable[[int], Buffer]) -> None:
        networks = {name: (layers, act) for name, layers, act in field.networks()}
        for label, function, (in_a, in_b), out in self._mlp_plan():
            self.mlp_stages.append((f"mlp/{label}", self._engine_mlp(label, *networks[function], in_a, in_b, out)))

    def _engine_mlp(self, label: str, layers: list[np.ndarray], activation: str, in_a: Buffer,
                    in_b: Buffer | None, out: Buffer):
        """The NGPC MLP engine for one network: weights (out x in, row-major, at the storage precision) in a
        storage buffer, layer shapes as constants."""
        flat = np.concatenate([np.asarray(w, np.float32).ravel() for w in layers])
        if self.arch.storage_precision == "fp16":
            flat = flat.astype(np.float16).astype(np.float32)
        weights = self.own(Buffer(self.device, flat.nbytes, (STORAGE,), host=False))
        weights.write(flat)
        code = glslgen.ngpc_layers(layers, activation)
        n_in_b = self._n_in_b(in_b)
        bindings = bind(ctl=self.control, in_a=in_a, in_b=in_b, net_y=out, weights=weights)
        defines = {"NET_IN_A": layers[0].shape[1] - n_in_b, "NET_IN_B": n_in_b, "NET_OUT": layers[-1].shape[0]}
        return self._kernel("ngpc/mlp.comp", f"mlp/{label}", bindings, {"generated/layers.glsl": code},
                            defines=defines)

    def projected(self, stats) -> tuple[str, float] | None:
        """This NGPC and the frame's time on it, from the frame's work and its measured rest-of-kernels time."""
        if stats.samples == 0:
            return None
        work = Workload.from_model(self.model, stats.samples, self.arch.bytes_per_value())
        rest = stats.class_ms()["rest"]
        return self.arch.describe(), project(self.arch, work, max(stats.gpu_ms, rest, 1e-9), rest).frame_ms


def ngpc_stages(arch: Arch) -> Callable[[WavefrontSpec], NgpcWavefront]:
    """The ``stages`` argument of an app on the ngpc pipeline: NgpcWavefront on ``arch``."""
    def build(spec: WavefrontSpec) -> NgpcWavefront:
        return NgpcWavefront(spec, arch)
    return build


def pipeline_options(pipeline: str, arch: Arch | None = None) -> dict:
    """create_app's / RenderSession's options for a pipeline name: ngpc runs the NGPC's stages on ``arch``,
    which it needs; the other pipelines their own (``stages`` None, so options that replace an ngpc pipeline's
    drop its stages)."""
    if pipeline != "ngpc":
        if arch is not None:
            raise ConfigError(f"an NGPC architecture applies to the ngpc pipeline only, not to {pipeline}")
        return {"pipeline": pipeline, "stages": None}
    if arch is None:
        raise ConfigError("the ngpc pipeline needs its NGPC architecture (ngpc.arch.load_arch(preset, ...))")
    return {"pipeline": pipeline, "stages": ngpc_stages(arch)}
