#version 450
#extension GL_EXT_control_flow_attributes : require
// Unfused stage 5: each live ray consumes its samples' network results in order (compositing / tracing).
layout(local_size_x = 64) in;
#include "generated/app.glsl"
#include "wavefront.glsl"

void main() {
    uint j = gl_GlobalInvocationID.x;
    if (j >= ctl.n_in) return;
    uint ray = lists[ctl.list_in + j];
    Ray r = rays[ray];
    bool alive = consume_pending(j, ray_flags[ray], r);
    rays[ray] = r;
    ray_flags[ray] = alive ? ALIVE : 0u;
}
