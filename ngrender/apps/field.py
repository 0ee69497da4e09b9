"""GPU resources of a neural field (grid table + MLP weights) in either kernel variant.

* ``baked``: MLP weights compiled into the shader as literals, grid table through a uniform texel buffer.
  Fastest on CPU drivers, where every buffer read in a hot loop is a scalar loop; a weight change recompiles.
* ``buffered``: grid in a storage buffer (packed fp16 when the model is fp16), weights in a uniform buffer.
  A new model needs no recompile.
* ``shared``: tiny-cuda-nn's fully fused MLP shape for GPUs: grid as in ``buffered``; each workgroup loads all
  weights once into shared memory (fp16 for fp16 models), every invocation's MLP reads them from there and
  keeps its activations in registers; fp32 arithmetic, so its images equal the reference like the others.
* ``shared-fp16``: ``shared`` computing as tiny-cuda-nn does, in fp16 (needs the device's shaderFloat16): fp16
  weights in shared memory, fp16 inputs, hidden layers summed and stored in fp16; the output layer sums its fp16
  products in fp32. Within fp16 tolerance of the reference, not equal to it. ``auto`` picks it on GPUs with
  shaderFloat16 when the weights fit the shared memory (``shared`` without shaderFloat16, else ``buffered``).
"""
from __future__ import annotations

import numpy as np

from .. import glslgen
from ..encoding import GridGeometry
from ..errors import ConfigError
from ..limits import MAX_BAKED_WEIGHTS, check_device_buffer
from ..model import Model
from ..shader_interface import BINDINGS
from ..vk.device import Device
from ..vk.live import Owner
from ..vk.resources import STORAGE, TEXEL, UNIFORM, Buffer, TexelBufferView
from .views import VARIANTS

SHARED_VARIANTS = ("shared", "shared-fp16")  # weights in shared memory (mlp_shared.glsl)


def shared_weight_bytes(layers: list[np.ndarray], half: bool) -> int:
    """Shared memory the shared variant needs for these layers (vec4 rows, fp16 or fp32)."""
    return sum(w.shape[0] * glslgen.vec4_rows(w) for w in layers) * (8 if half else 16)


def choose_variant(device: Device, requested: str = "auto", shared_bytes: int = 0) -> str:
    """``auto``: baked on CPU drivers (constants beat any memory read there); on GPUs shared-fp16 (shared
    without shaderFloat16) when the weights (``shared_bytes``) fit the workgroup's shared memory, else
    buffered. ``shared-fp16`` needs the device's shaderFloat16."""
    if requested not in VARIANTS:
        raise ConfigError(f"unknown kernel variant {requested!r}; choose one of {', '.join(VARIANTS)}")
    if requested == "shared-fp16" and not device.float16_arithmetic:
        raise ConfigError(f"the shared-fp16 variant computes in fp16, which {device.info.name} does not offer "
                          "(no shaderFloat16); use --variant shared")
    if requested == "auto":
        if device.info.is_cpu:
            return "baked"
        if shared_bytes > int(device.limits.maxComputeSharedMemorySize):
            return "buffered"
        return "shared-fp16" if device.float16_arithmetic else "shared"
    return requested


def check_field_limits(device: Device, geometry: GridGeometry, n_weights: int, half: bool, variant: str) -> None:
    """The field fits the device in this variant; checked before anything is loaded, uploaded or compiled."""
    lim = device.limits
    entries, features = geometry.n_entries, geometry.n_features
    table_bytes = entries * features * (2 if half else 4)
    shrink = "a smaller grid (fewer levels or a smaller log2_hashmap_size)"
    if variant == "baked":
        texels = entries * (2 if features == 8 else 1)  # 8 features are two rgba texels
        limit = int(lim.maxTexelBufferElements)
        if texels > limit:
            other = " or --variant buffered" if table_bytes <= int(lim.maxStorageBufferRange) else ""
            raise ConfigError(f"the grid table has {texels:,} texels, over this device's texel-buffer limit of "
                              f"{limit:,}; use {shrink}{other}")
        if n_weights > MAX_BAKED_WEIGHTS:
            raise ConfigError(f"the MLPs have {n_weights:,} weights; the baked variant compiles at most "
                              f"{MAX_BAKED_WEIGHTS:,} into a shader (bigger ones take minutes on CPU drivers): "
                              "use --variant buffered or a smaller network (n_neurons, n_hidden_layers)")
    else:
        check_device_buffer(table_bytes, int(lim.maxStorageBufferRange), "the grid table as a storage buffer",
                            f"use {shrink}")
    if variant == "buffered":
        check_device_buffer(n_weights * 4, int(lim.maxUniformBufferRange), "the MLP weights as a uniform buffer",
                            "use --variant shared or a smaller network (n_neurons, n_hidden_layers)")
    if variant in SHARED_VARIANTS:
        half = half or variant == "shared-fp16"
        check_device_buffer(n_weights * (2 if half else 4), int(lim.maxComputeSharedMemorySize),
                            "the MLP weights in shared memory", "use --variant buffered or a smaller network")


def _texel_format(n_features: int, half: bool) -> str:
    width = {1: "r", 2: "rg", 4: "rgba", 8: "rgba"}[n_features]
    return width + ("16f" if half else "32f")


class FieldResources(Owner):
    """Uploads one model's grid and MLP; gives the shader its bindings, defines and generated includes.

    Bindings (shader_interface.BINDINGS): the grid (texel view or storage buffer); buffered and shared only, the
    MLP weights (every network; uniform, or storage for shared); NeRF only, the occupancy (r8ui texel view).
    Networks: ``mlp_forward`` (the model's network) and, for NeRF, ``rgb_forward`` (the colour network).
    """

    def _create(self, device: Device, model: Model, variant: str) -> None:
        self.device, self.model, self.variant = device, model, variant
        half = model.storage_dtype == "float16"
        check_field_limits(device, model.geometry, sum(w.size for _, layers, _ in self.networks() for w in layers),
                           half, variant)
        table = model.grid_table.astype(np.float16 if half else np.float32)
        if variant == "baked":
            grid_buffer = self.own(Buffer(device, table.nbytes, (TEXEL,), host=False))
            grid_buffer.write(table)
            self.grid = self.own(TexelBufferView(grid_buffer, _texel_format(model.geometry.n_features, half)))
            self.weights = None
        else:
            self.grid = self.own(Buffer(device, table.nbytes, (STORAGE,), host=False))
            self.grid.write(table)
            packed = np.concatenate([glslgen.pack_mlp_vec4(layers) for _, layers, _ in self.networks()])
            shared = variant in SHARED_VARIANTS
            if self._shared_half(variant, half):
                # exact for fp16 models; shared-fp16 rounds an fp32 model's weights as tiny-cuda-nn does
                packed = packed.astype(np.float16)
            limit = int(device.limits.maxComputeSharedMemorySize if shared else device.limits.maxUniformBufferRange)
            if packed.nbytes > limit:
                where = "shared memory" if shared else "uniform-buffer limit"
                raise ConfigError(f"MLP weights take {packed.nbytes} bytes, over this device's {where} "
                                  f"of {limit}; use the baked variant or a smaller network")
            role = STORAGE if shared else UNIFORM
            self.weights = self.own(Buffer(device, packed.nbytes, (role,), host=False))
            self.weights.write(packed)
        self.occupancy = None
        if model.occupancy is not None:
            occ_buffer = self.own(Buffer(device, model.occupancy.nbytes, (TEXEL,), host=False))
            occ_buffer.write(model.occupancy)
            self.occupancy = self.own(TexelBufferView(occ_buffer, "r8ui"))
        self.half = half

    @staticmethod
    def _shared_half(variant: str, half: bool) -> bool:
        """The shared variants' weights in shared memory as fp16: fp16 models, and always in shared-fp16."""
        return variant == "shared-fp16" or (variant == "shared" and half)

    def networks(self) -> list[tuple[str, list[np.ndarray], str]]:
        """(GLSL function, layers, output activation) of each network of the model."""
        nets = [("mlp_forward", self.model.layers, self.model.net.output_activation)]
        if self.model.rgb_net is not None:
            nets.append(("rgb_forward", self.model.rgb_layers, self.model.rgb_net.output_activation))
        return nets

    def defines(self) -> dict[str, int]:
        out = glslgen.grid_defines(self.model.geometry)
        out.update(glslgen.mlp_defines(self.model.layers))
        out["GRID_HALF"] = int(self.half)
        out["MLP_VEC4S"] = sum(w.shape[0] * glslgen.vec4_rows(w) for _, layers, _ in self.networks() for w in layers)
        out["BAKED"] = int(self.variant == "baked")
        out["SHARED_HALF"] = int(self.half or self.variant == "shared-fp16")
        out["SHARED_F16_MATH"] = int(self.variant == "shared-fp16")
        if self.model.occupancy is not None:
            out["OCCUPANCY_RES"] = self.model.occupancy_side
        return out

    def generated(self, networks: bool = True) -> dict[str, str]:
        """Generated includes: the level table and ``generated/variant.glsl`` (grid access, and the networks'
        functions unless ``networks`` is false)."""
        code = ['#include "activation.glsl"']
        code.append('#include "grid_texel.glsl"' if self.variant == "baked" else '#include "grid_buffer.glsl"')
        if networks:
            code += [self.network_code(layers, act, name, self.vec4_offset(name))
                     for name, layers, act in self.networks()]
        return {"generated/grid_levels.glsl": glslgen.level_table(self.model.geometry),
                "generated/variant.glsl": "\n".join(code) + "\n"}

    def vec4_offset(self, network: str, layer: int = 0) -> int:
        """Where a network's layer starts in the uniform buffer (buffered variant)."""
        offset = 0
        for name, layers, _ in self.networks():
            for index, w in enumerate(layers):
                if (name, index) == (network, layer):
                    return offset
                offset += w.shape[0] * glslgen.vec4_rows(w)
        raise KeyError(f"no layer {layer} in network {network}")

    def network_code(self, layers: list[np.ndarray], activation: str, name: str, vec4_offset: int) -> str:
        """GLSL function ``name`` evaluating ``layers`` in this variant (baked literals or uniform-buffer reads
        at ``vec4_offset``, which needs mlp_uniform.glsl)."""
        if self.variant == "baked":
            return '#include "mlp_baked.glsl"\n' + glslgen.baked_mlp(layers, activation, name)
        if self.variant == "shared":
            return '#include "mlp_shared.glsl"\n' + glslgen.buffered_mlp(layers, activation, name, vec4_offset,
                                                                          load="mlp_w(uint({}))")
        if self.variant == "shared-fp16":
            return '#include "mlp_shared.glsl"\n' + glslgen.buffered_mlp(layers, activation, name, vec4_offset,
                                                                          load="mlp_w16(uint({}))", fp16=True)
        return '#include "mlp_uniform.glsl"\n' + glslgen.buffered_mlp(layers, activation, name, vec4_offset)

    def bindings(self) -> dict[int, tuple[str, object]]:
        """{slot: (role, resource)} of the field's bindings."""
        if self.variant == "baked":
            out = dict([BINDINGS["grid_tex"].bind(self.grid)])
        else:
            if self.variant in SHARED_VARIANTS:
                weights = BINDINGS["mlp_g_half" if self._shared_half(self.variant, self.half) else "mlp_g_float"]
            else:
                weights = BINDINGS["mlp_w4"]
            out = dict([BINDINGS["grid_words"].bind(self.grid), weights.bind(self.weights)])
        if self.occupancy is not None:
            out.update([BINDINGS["occupancy"].bind(self.occupancy)])
        return out

