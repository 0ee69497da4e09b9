"""Generated GLSL: level tables of an encoding; MLPs with weights baked in as literals (baked variant) or read
from a uniform buffer (buffered variant), each network under its own function name."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .encoding import GridGeometry, encoding_spec, encoding_specs
from .shader_interface import OUTPUT_ACTIVATIONS, glsl_float

ACTIVATIONS = tuple(OUTPUT_ACTIVATIONS)


def level_table(geom: GridGeometry) -> str:
    """``generated/grid_levels.glsl``: per-level constants folded into the unrolled level loop."""
    def array(kind: str, name: str, values: Sequence[str]) -> str:
        return f"const {kind} {name}[{len(values)}] = {kind}[]({', '.join(values)});"

    lv = geom.levels
    return "\n".join([
        f"// {geom.describe()}",
        array("float", "LEVEL_SCALE", [glsl_float(x.scale) for x in lv]),
        array("uint", "LEVEL_RES", [f"{x.resolution}u" for x in lv]),
        array("uint", "LEVEL_SIZE", [f"{x.size}u" for x in lv]),
        array("uint", "LEVEL_OFFSET", [f"{x.offset}u" for x in lv]),
        array("bool", "LEVEL_HASHED", ["true" if x.hashed else "false" for x in lv]),
    ]) + "\n"


def grid_defines(geom: GridGeometry) -> dict[str, int | str]:
    """The grid's shape, a GRID_<KIND> flag per registered encoding kind (1 for this one), GRID_NGPC_ENGINE (the
    NGPC's encoding engine computes this kind) and the kind's constants (floats as exact GLSL literals)."""
    spec = encoding_spec(geom.kind)
    out: dict[str, int | str] = {"GRID_DIMS": geom.n_dims, "GRID_LEVELS": geom.n_levels, "GRID_F": geom.n_features,
                                 "GRID_NGPC_ENGINE": int(spec.ngpc_engine)}
    out.update({f"GRID_{other.kind.upper()}": int(other.kind == geom.kind) for other in encoding_specs()})
    for name, value in spec.defines(geom).items():
        out[name] = glsl_float(value) if isinstance(value, (float, np.floating)) else value
    return out


def mlp_defines(layers: Sequence[np.ndarray]) -> dict[str, int]:
    """MLP_IN / MLP_OUT of the main network, for the kernels' feature and output arrays."""
    return {"MLP_IN": layers[0].shape[1], "MLP_OUT": layers[-1].shape[0]}


def _check_activation(activation: str) -> str:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown output activation {activation!r}")
    return f"act_{activation}"


def baked_mlp(layers: Sequence[np.ndarray], activation: str, name: str = "mlp_forward") -> str:
    """A straight-line MLP with every weight a literal: on CPU drivers constants beat any buffer read.

    Hidden layers use ReLU; the output goes through ``act_<activation>`` (activation.glsl).
    """
    act = _check_activation(activation)
    lines = [f"void {name}(in float x[{layers[0].shape[1]}], out float y[{layers[-1].shape[0]}]) {{"]
    src = "x"
    for index, weight in enumerate(layers):
        last = index == len(layers) - 1
        dst = "y" if last else f"h{index}"
        if not last:
            lines.append(f"    float {dst}[{weight.shape[0]}];")
        for j, row in enumerate(np.asarray(weight, dtype=np.float32)):
            terms = " + ".join(f"{src}[{i}] * {glsl_float(w)}" for i, w in enumerate(row))
            value = f"{act}({terms})" if last else f"max({terms}, 0.0)"
            lines.append(f"    {dst}[{j}] = {value};")
        src = dst
    lines.append("}")
    return "\n".join(lines) + "\n"


def vec4_rows(layer: np.ndarray) -> int:
    """vec4s per row of a layer in the uniform-buffer layout (inputs zero-padded to a multiple of 4)."""
    return -(-layer.shape[1] // 4)


def pack_mlp_vec4(layers: Sequence[np.ndarray]) -> np.ndarray:
    """Layers (out, in) -> float32 rows zero-padded to a multiple of 4 inputs, concatenated (buffered_mlp)."""
    rows = []
    for w in layers:
        padded = np.zeros((w.shape[0], vec4_rows(w) * 4), dtype=np.float32)
        padded[:, :w.shape[1]] = w
        rows.append(padded.ravel())
    return np.concatenate(rows)


def buffered_mlp(layers: Sequence[np.ndarray], activation: str, name: str = "mlp_forward",
                 vec4_offset: int = 0, load: str = "mlp_w4[{}]", fp16: bool = False) -> str:
    """The same MLP reading its weights as vec4 rows at ``vec4_offset`` through ``load`` (a format string of
    the row index: ``mlp_w4[{}]`` from the uniform buffer, mlp_uniform.glsl; ``mlp_w({})`` from shared memory,
    mlp_shared.glsl): weights are data, so a new model needs no recompile. Hidden widths must be multiples of
    4. ``fp16`` (shared-fp16; ``load`` gives f16vec4 rows, e.g. ``mlp_w16({})``): the inputs are rounded to
    fp16, each hidden neuron is summed in fp16 (fp16 dot products of 4, added in order) and stored in fp16, as
    tiny-cuda-nn's fully fused MLP does; the output layer adds its fp16 dot products in fp32 (fp16_mlp in
    tests/test_gpu_kernels.py models these roundings)."""
    act = _check_activation(activation)
    n_in, n_out = layers[0].shape[1], layers[-1].shape[0]
    rows0 = vec4_rows(layers[0])
    vec, scalar = ("f16vec4", "float16_t") if fp16 else ("vec4", "float")
    lines = [f"void {name}(in float x[{n_in}], out float y[{n_out}]) {{",
             f"    {vec} a0[{rows0}];",
             f"    [[unroll]] for (int k = 0; k < {rows0}; ++k) {{",
             f"        [[unroll]] for (int c = 0; c < 4; ++c) a0[k][c] = {scalar}((4 * k + c < {n_in}) ? "
             f"x[min(4 * k + c, {n_in - 1})] : 0.0);",
             "    }"]
    offset = vec4_offset
    for index, weight in enumerate(layers):
        last = index == len(layers) - 1
        rows, n = vec4_rows(weight), weight.shape[0]
        if not last and n % 4:
            raise ValueError(f"buffered MLP hidden width {n} is not a multiple of 4")
        src, dst = f"a{index}", f"a{index + 1}"
        if not last:
            lines.append(f"    {vec} {dst}[{n // 4}];")
        row = load.format(f"{offset} + j * {rows} + k")
        if fp16 and last:  # fp32 sums of the fp16 dot products: the outputs keep their fp32 precision
            total, term = "float", f"float(dot({row}, {src}[k]))"
        else:
            total, term = scalar, f"dot({row}, {src}[k])"
        lines += [f"    [[unroll]] for (int j = 0; j < {n}; ++j) {{",
                  f"        {total} s = {total}(0.0);",
                  f"        [[unroll]] for (int k = 0; k < {rows}; ++k) s += {term};",
                  f"        y[j] = {act}(s);" if last else f"        {dst}[j / 4][j % 4] = max(s, {scalar}(0.0));",
                  "    }"]
        offset += n * rows
    lines.append("}")
    return "\n".join(lines) + "\n"


def ngpc_layers(layers: Sequence[np.ndarray], activation: str) -> str:
    """``generated/layers.glsl`` of shaders/ngpc/mlp.comp: N_LAYERS, NET_WIDTH (widest layer side), the
    LAYER_IN / LAYER_OUT / LAYER_OFFSET tables (offsets into the row-major out x in weights, layers one after
    another) and ``float output_act(float)``."""
    act = _check_activation(activation)
    offsets = np.cumsum([0] + [w.size for w in layers[:-1]])

    def table(name: str, values: Sequence[int]) -> str:
        return f"const int {name}[{len(values)}] = int[]({', '.join(str(int(v)) for v in values)});"

    return "\n".join([f"#define N_LAYERS {len(layers)}",
                      f"#define NET_WIDTH {max(max(w.shape) for w in layers)}",
                      table("LAYER_IN", [w.shape[1] for w in layers]),
                      table("LAYER_OUT", [w.shape[0] for w in layers]), table("LAYER_OFFSET", list(offsets)),
                      f"float output_act(float v) {{ return {act}(v); }}"]) + "\n"


COOPMAT_TILE = 16  # M = N = K of the cooperative-matrix tiles (fp16 inputs, fp32 accumulators)


def _pad16(n: int) -> int:
    return -(-n // COOPMAT_TILE) * COOPMAT_TILE


def coopmat_weights(layers: Sequence[np.ndarray]) -> tuple[str, np.ndarray]:
    """``generated/coopmat_layers.glsl`` and the fp16 weights of shaders/coopmat/mlp.comp: each layer's W^T
    zero-padded to (K, N) multiples of 16, row-major (k, n), layers one after another (offsets in halves,
    each a multiple of 16 so every tile load is aligned)."""
    blocks, ks, ns, offsets, offset = [], [], [], [], 0
    for w in layers:
        n_out, n_in = w.shape
        k, n = _pad16(n_in), _pad16(n_out)
        block = np.zeros((k, n), np.float16)
        block[:n_in, :n_out] = np.asarray(w, np.float32).T
        blocks.append(block.ravel())
        ks.append(k)
        ns.append(n)
        offsets.append(offset)
        offset += k * n
    weights = np.concatenate(blocks)
    if weights.size % 2:
        weights = np.append(weights, np.float16(0))  # whole 32-bit words for the scalar path
    text = "\n".join([
        f"#define N_LAYERS {len(layers)}",
        f"#define K_MAX {max(ks)}",
        f"#define N_MAX {max(ns)}",
        f"const uint LAYER_K[{len(ks)}] = uint[]({', '.join(f'{k}u' for k in ks)});",
        f"const uint LAYER_N[{len(ns)}] = uint[]({', '.join(f'{n}u' for n in ns)});",
        f"const uint LAYER_W[{len(offsets)}] = uint[]({', '.join(f'{o}u' for o in offsets)});",
    ]) + "\n"
    return text, weights
