#version 450
#extension GL_EXT_control_flow_attributes : require
// Unfused input encoding. Features are level-major as tiny-cuda-nn writes them: row level * GRID_F + f holds
// feature f of that level for every sample of the batch. ENCODE_PER_LEVEL 1: one invocation per (sample,
// level), tcnn's mapping (workgroup y = level; good on GPUs); 0: one invocation per sample doing every level
// (CPU drivers, where each invocation costs a SIMD-loop trip).
layout(local_size_x = 64) in;

#include "control.glsl"
#include "generated/bind_samples_in.glsl"
#include "generated/bind_features.glsl"
#include "generated/grid_levels.glsl"
#include "generated/variant.glsl"
#include "grid.glsl"

void main() {
    uint s = gl_GlobalInvocationID.x;
    if (s >= ctl.n_samples) return;
    vec4 rec = samples[(ctl.samples_in + s) * SAMPLE_VEC4S];
#if GRID_DIMS == 2
    gvec x = clamp(rec.xy, 0.0, 1.0);
#else
    gvec x = clamp(rec.xyz, 0.0, 1.0);
#endif
    [[unroll]] for (int l = 0; l < GRID_LEVELS; ++l) {
#if ENCODE_PER_LEVEL
        // A constant level index per branch (uniform within the workgroup): the level's constants fold as in
        // the fused kernel; a dynamic index into the LEVEL_* tables can cost a private copy of every table.
        if (l != int(gl_WorkGroupID.y)) continue;
#endif
        float v[GRID_F];
        grid_encode_level(l, x, v);
        [[unroll]] for (int f = 0; f < GRID_F; ++f) features[uint(l * GRID_F + f) * SAMPLE_CAPACITY + s] = v[f];
    }
}
