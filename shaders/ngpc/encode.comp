#version 450
#extension GL_EXT_control_flow_attributes : require
// NGPC input-encoding engine, functionally: the stages pos_fract (scale to the level grid, split cell and
// fraction), grid_index (dense index, or hash with the modulo as a mask: T is a power of two), interp_weights
// (d-linear), feature fetch from the level's grid SRAM, and weighted accumulation, at the configured precision.
// Output goes to the MLP engine's input buffer, level-major. ENCODE_PER_LEVEL 1: one engine per level (hash
// grids); 0: every level per invocation (dense grids are parallelised over inputs). Kinds the engine does not
// compute (GRID_NGPC_ENGINE 0: the simplex grid) run the GPU code, rounded at the output.
layout(local_size_x = 64) in;

#include "../unfused/control.glsl"
#include "generated/bind_samples_in.glsl"
#include "generated/bind_features.glsl"
#include "generated/grid_levels.glsl"
#include "generated/variant.glsl"
#include "grid.glsl"
#include "precision.glsl"

void engine_level(const int l, gvec x, out float v[GRID_F]) {
#if !GRID_NGPC_ENGINE
    grid_encode_level(l, x, v);
#else
    [[unroll]] for (int f = 0; f < GRID_F; ++f) v[f] = 0.0;
    precise gvec pos = gvec(LEVEL_SCALE[l]) * x + gvec(0.5);             // pos_fract
    gvec cellf = floor(pos);
    gvec frac = pos - cellf;
    guvec cell = guvec(givec(cellf));
    [[unroll]] for (int corner = 0; corner < (1 << GRID_DIMS); ++corner) {
        float w = 1.0;                                                    // interp_weights
        guvec c = cell;
        [[unroll]] for (int d = 0; d < GRID_DIMS; ++d) {
            if ((corner & (1 << d)) != 0) { w = acc_q(w * frac[d]); c[d] += 1u; }
            else { w = acc_q(w * (1.0 - frac[d])); }
        }
        float e[GRID_F];
        grid_load(grid_index(l, c), e);                                   // grid_index + SRAM fetch
        [[unroll]] for (int f = 0; f < GRID_F; ++f) v[f] = acc_q(v[f] + w * store_q(e[f]));
    }
#endif
    [[unroll]] for (int f = 0; f < GRID_F; ++f) v[f] = store_q(v[f]);
}

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
        if (l != int(gl_WorkGroupID.y)) continue;  // this workgroup is level l's engine
#endif
        float v[GRID_F];
        engine_level(l, x, v);
        [[unroll]] for (int f = 0; f < GRID_F; ++f) features[uint(l * GRID_F + f) * SAMPLE_CAPACITY + s] = v[f];
    }
}
