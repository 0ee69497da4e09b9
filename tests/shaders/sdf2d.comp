#version 450
#extension GL_EXT_control_flow_attributes : require
// Test-only fifth app (tests/fifth_app.py): a 2D neural SDF over the unit square. Pixel -> (u, v) -> grid
// encoding -> MLP -> signed distance -> a grey level ("distance") or white inside, black outside ("inside").
layout(local_size_x = WORKGROUP_X, local_size_y = WORKGROUP_Y) in;  // the app's workgroup (apps/base.py)

#include "generated/push_sdf2d.glsl"

#include "output.glsl"
#include "generated/grid_levels.glsl"
#include "generated/variant.glsl"
#include "grid.glsl"
#include "evaluations.glsl"

void main() {
    variant_prologue();  // before any invocation returns: the shared variant loads weights with a barrier
    uvec2 gid = gl_GlobalInvocationID.xy;
    if (gid.x >= uint(pc.tile_size.x) || gid.y >= uint(pc.tile_size.y)) return;
    precise vec2 uv = (vec2(ivec2(gid) + pc.tile_origin) + 0.5) * pc.pixel_step;
    float feat[MLP_IN];
    grid_encode(uv, feat);
    float y[MLP_OUT];
    mlp_forward(feat, y);
    count_evaluations(1u);  // the tile's network-evaluation counter
    precise float grey = pc.mode == 0 ? clamp(0.5 - pc.scale * y[0], 0.0, 1.0) : (y[0] < 0.0 ? 1.0 : 0.0);
    write_pixel(gid, uint(pc.tile_size.x), vec3(grey));
}
