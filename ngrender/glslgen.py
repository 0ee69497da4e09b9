"""Generated GLSL: level tables of an encoding, MLPs with their weights baked in as literal constants."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .encoding import GridGeometry

ACTIVATION_IDS = {"none": 0, "relu": 1, "sigmoid": 2, "exponential": 3}


def glsl_float(value: float) -> str:
    """A GLSL float literal that reads back as the same float32."""
    text = f"{float(np.float32(value)):.9g}"
    return text if any(ch in text for ch in ".en") else text + ".0"


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


def grid_defines(geom: GridGeometry) -> dict[str, int]:
    return {"GRID_DIMS": geom.n_dims, "GRID_LEVELS": geom.n_levels, "GRID_F": geom.n_features}


def mlp_defines(layers: Sequence[np.ndarray], output_activation: str) -> dict[str, int]:
    return {"MLP_IN": layers[0].shape[1], "MLP_WIDTH": layers[0].shape[0], "MLP_HIDDEN": len(layers) - 1,
            "MLP_OUT": layers[-1].shape[0], "MLP_OUTPUT_ACTIVATION": ACTIVATION_IDS[output_activation]}


def baked_mlp(layers: Sequence[np.ndarray], name: str = "mlp_forward") -> str:
    """A straight-line MLP with every weight a literal: on CPU drivers constants beat any buffer read.

    Hidden layers use ReLU; the output goes through ``output_activation`` (activation.glsl).
    """
    lines = ['#include "activation.glsl"',
             f"void {name}(in float x[{layers[0].shape[1]}], out float y[{layers[-1].shape[0]}]) {{"]
    src = "x"
    for index, weight in enumerate(layers):
        last = index == len(layers) - 1
        dst = "y" if last else f"h{index}"
        if not last:
            lines.append(f"    float {dst}[{weight.shape[0]}];")
        for j, row in enumerate(np.asarray(weight, dtype=np.float32)):
            terms = " + ".join(f"{src}[{i}] * {glsl_float(w)}" for i, w in enumerate(row))
            value = f"output_activation({terms})" if last else f"max({terms}, 0.0)"
            lines.append(f"    {dst}[{j}] = {value};")
        src = dst
    lines.append("}")
    return "\n".join(lines) + "\n"
