#version 450
#extension GL_EXT_control_flow_attributes : require
// Unfused stage 1: one ray per pixel of the tile; rays that need samples go to the output list.
layout(local_size_x = 64) in;
#include "generated/app.glsl"
#include "wavefront.glsl"

void main() {
    uint ray = gl_GlobalInvocationID.x;
    if (ray >= ctl.n_in) return;
    Ray r;
    bool alive = ray_init(pixel_of(ray), r);
    rays[ray] = r;
    ray_flags[ray] = 0u;
    uint index;
    if (alive) append_ray(ray, index);
}
