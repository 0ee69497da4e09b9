"""Runs shaders/unit/field.comp: one stage of a neural field on the GPU, for comparison with the reference."""
from __future__ import annotations

import numpy as np

from ngrender.apps.field import FieldResources
from ngrender.shader_interface import BINDINGS, PUSH_BLOCKS
from ngrender.shaders import compile_shader
from ngrender.vk.compute import compute_barrier, create_bound_pipeline
from ngrender.vk.resources import STORAGE, Buffer

MODES = {"encode": 0, "index": 1, "mlp": 2}


def run_field_stage(device, model, variant: str, mode: str, inputs: np.ndarray) -> np.ndarray:
    """inputs (N, k) float32 (encode, mlp) or uint32 (index) -> outputs (N, m) as float32 or uint32."""
    field = FieldResources(device, model, variant)
    n = inputs.shape[0]
    out_width = {"encode": model.geometry.n_output_dims, "index": model.geometry.n_levels,
                 "mlp": model.n_output_dims}[mode]
    owned = [field]
    try:
        src = Buffer(device, inputs.nbytes, (STORAGE,))
        owned.append(src)
        src.write(np.ascontiguousarray(inputs))
        dst = Buffer(device, n * out_width * 4, (STORAGE,))
        owned.append(dst)
        defines = field.defines()
        defines["UNIT_MODE"] = MODES[mode]
        spirv = compile_shader("unit/field.comp", defines, field.generated())
        bindings = {**field.bindings(), **dict([BINDINGS["inputs"].bind(src), BINDINGS["outputs"].bind(dst)])}
        push = PUSH_BLOCKS["unit"]
        pipe = create_bound_pipeline(device, spirv, bindings, push_size=push.size, label=f"unit_{mode}")
        owned.append(pipe)

        def record(cmd):
            pipe.record(cmd, (-(-n // 64), 1, 1), push.pack({"count": n}))
            compute_barrier(device, cmd)

        device.submit(record)
        return dst.read(np.uint32 if mode == "index" else np.float32).reshape(n, out_width)
    finally:
        for obj in reversed(owned):
            obj.destroy()
