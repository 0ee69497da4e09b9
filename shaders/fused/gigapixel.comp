#version 450
#extension GL_EXT_control_flow_attributes : require
// Fused gigapixel image (GIA): pixel -> image-plane coordinate -> grid encoding -> MLP -> RGBA8, one dispatch
// per tile. The kernel variant (baked weights + texel-buffer grid, or buffered) comes in generated/variant.glsl.
layout(local_size_x = 8, local_size_y = 8) in;

#define GRID_BINDING 0
#define MLP_BINDING 2
layout(push_constant) uniform Push {
    ivec2 tile_origin;    // first pixel of this tile in the frame
    ivec2 tile_size;
    vec2 window_origin;   // image-plane coordinate of the frame's top-left corner
    vec2 pixel_step;      // image-plane size of one pixel
    float background;
} pc;

#include "generated/grid_levels.glsl"
#include "generated/variant.glsl"
#include "grid.glsl"
#include "output.glsl"

void main() {
    uvec2 gid = gl_GlobalInvocationID.xy;
    if (gid.x >= uint(pc.tile_size.x) || gid.y >= uint(pc.tile_size.y)) return;
    precise vec2 pixel = vec2(ivec2(gid) + pc.tile_origin) + 0.5;
    precise vec2 uv = pc.window_origin + pixel * pc.pixel_step;
    vec3 rgb = vec3(pc.background);
    if (all(greaterThanEqual(uv, vec2(0.0))) && all(lessThanEqual(uv, vec2(1.0)))) {
        float feat[MLP_IN];
        grid_encode(uv, feat);
        float y[MLP_OUT];
        mlp_forward(feat, y);
        rgb = vec3(y[0], y[1], y[2]);
    }
    write_pixel(gid, uint(pc.tile_size.x), rgb);
}
