#version 450
#extension GL_EXT_control_flow_attributes : require
// Unfused stage 6: the rays still alive go to the output list (the next iteration's input).
layout(local_size_x = 64) in;
#include "generated/app.glsl"
#include "wavefront.glsl"

void main() {
    uint j = gl_GlobalInvocationID.x;
    if (j >= ctl.n_in) return;
    uint ray = lists[ctl.list_in + j];
    uint index;
    if ((ray_flags[ray] & ALIVE) != 0u) append_ray(ray, index);
}
