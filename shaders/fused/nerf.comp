#version 450
#extension GL_EXT_control_flow_attributes : require
// Fused NeRF: camera ray -> unit-cube clip -> marching that jumps over empty occupancy cells -> hash grid ->
// density MLP -> [out, SH(dir)] -> colour MLP -> compositing with early termination, one dispatch (ray logic:
// lib/ray_nerf.glsl). One network evaluation per loop iteration, so the lanes of a SIMD group evaluate together.
layout(local_size_x = WORKGROUP_X, local_size_y = WORKGROUP_Y) in;  // apps/base.py workgroup_shape

#include "ray_nerf.glsl"
#include "generated/grid_levels.glsl"
#include "generated/variant.glsl"
#include "grid.glsl"
#include "evaluations.glsl"
#include "sh.glsl"

void main() {
    variant_prologue();  // before any invocation returns: the shared variant loads weights with a barrier
    uvec2 gid = gl_GlobalInvocationID.xy;
    if (gid.x >= uint(pc.tile_size.x) || gid.y >= uint(pc.tile_size.y)) return;
    Ray r;
    bool alive = ray_init(gid, r);
    float rgb_in[MLP_OUT + SH_DEGREE * SH_DEGREE];  // [density-network outputs, SH(dir)]
    float sh[SH_DEGREE * SH_DEGREE];
    sh_encode(r.d_t.xyz, sh);
    [[unroll]] for (int k = 0; k < SH_DEGREE * SH_DEGREE; ++k) rgb_in[MLP_OUT + k] = sh[k];
    vec4 s;
    uint evaluated = 0u;  // network evaluations, added to the tile's counter once at the end
    while (alive && next_sample(r, s)) {
        evaluated += 1u;
        float feat[MLP_IN];
        grid_encode(clamp(s.xyz, 0.0, 1.0), feat);
        float h[MLP_OUT];
        mlp_forward(feat, h);
        [[unroll]] for (int k = 0; k < MLP_OUT; ++k) rgb_in[k] = h[k];
        float c[3];
        rgb_forward(rgb_in, c);
        float res[RESULT_N] = float[](h[0], c[0], c[1], c[2]);
        alive = consume(r, s, res);
    }
    if (evaluated != 0u) count_evaluations(evaluated);
    write_pixel(gid, uint(pc.tile_size.x), shade(r));
}
