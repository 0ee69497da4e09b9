#version 450
#extension GL_EXT_control_flow_attributes : require
// Unfused last stage: every pixel of the tile from its finished ray.
layout(local_size_x = 64) in;
#include "generated/app.glsl"
#include "wavefront.glsl"

void main() {
    uint ray = gl_GlobalInvocationID.x;
    if (ray >= ctl.n_in) return;
    write_pixel(pixel_of(ray), uint(pc.tile_size.x), shade(rays[ray]));
}
