#version 450
#extension GL_EXT_control_flow_attributes : require
// Fused gigapixel image (GIA): pixel -> image-plane coordinate -> grid encoding -> MLP -> RGBA8, one dispatch
// per tile. The kernel variant (baked weights + texel-buffer grid, or buffered) comes in generated/variant.glsl.
layout(local_size_x = WORKGROUP_X, local_size_y = WORKGROUP_Y) in;  // apps/base.py workgroup_shape

#include "ray_gigapixel.glsl"
#include "generated/grid_levels.glsl"
#include "generated/variant.glsl"
#include "grid.glsl"
#include "evaluations.glsl"

void main() {
    variant_prologue();  // before any invocation returns: the shared variant loads weights with a barrier
    uvec2 gid = gl_GlobalInvocationID.xy;
    if (gid.x >= uint(pc.tile_size.x) || gid.y >= uint(pc.tile_size.y)) return;
    Ray r;
    vec4 s;
    if (ray_init(gid, r) && next_sample(r, s)) {  // one sample per pixel: no loop
        float feat[MLP_IN];
        grid_encode(s.xy, feat);
        float y[MLP_OUT];
        mlp_forward(feat, y);
        consume(r, s, y);
        count_evaluations(1u);  // the tile's network-evaluation counter
    }
    write_pixel(gid, uint(pc.tile_size.x), shade(r));
}
