#version 450
#extension GL_EXT_control_flow_attributes : require
// Unit kernel for the tests: one stage of a neural field per invocation, compared with ngrender.reference.
//   UNIT_MODE 0: grid_encode(x) -> L*F features      (inputs: float coordinates)
//   UNIT_MODE 1: grid_index(level, c) for each level  (inputs: uint corner coordinates)
//   UNIT_MODE 2: mlp_forward(x) -> outputs            (inputs: float MLP inputs)
layout(local_size_x = 64) in;

#include "generated/bind_inputs.glsl"
#include "generated/bind_outputs.glsl"
#include "generated/push_unit.glsl"

#include "generated/grid_levels.glsl"
#include "generated/variant.glsl"
#include "grid.glsl"

void main() {
#if UNIT_MODE == 2
    variant_prologue();
#endif
    uint i = gl_GlobalInvocationID.x;
    if (i >= pc.count) return;
#if UNIT_MODE == 0
    gvec x;
    [[unroll]] for (int d = 0; d < GRID_DIMS; ++d) x[d] = uintBitsToFloat(inputs[i * GRID_DIMS + d]);
    float feat[GRID_LEVELS * GRID_F];
    grid_encode(x, feat);
    [[unroll]] for (int k = 0; k < GRID_LEVELS * GRID_F; ++k)
        outputs[i * (GRID_LEVELS * GRID_F) + k] = floatBitsToUint(feat[k]);
#elif UNIT_MODE == 1
    guvec c;
    [[unroll]] for (int d = 0; d < GRID_DIMS; ++d) c[d] = inputs[i * GRID_DIMS + d];
    [[unroll]] for (int l = 0; l < GRID_LEVELS; ++l) outputs[i * GRID_LEVELS + l] = grid_index(l, c) - LEVEL_OFFSET[l];
#else
    float x[MLP_IN];
    [[unroll]] for (int k = 0; k < MLP_IN; ++k) x[k] = uintBitsToFloat(inputs[i * MLP_IN + k]);
    float y[MLP_OUT];
    mlp_forward(x, y);
    [[unroll]] for (int k = 0; k < MLP_OUT; ++k) outputs[i * MLP_OUT + k] = floatBitsToUint(y[k]);
#endif
}
