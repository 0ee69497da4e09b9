#version 450
#extension GL_EXT_control_flow_attributes : require
// Unfused stage 2: up to k_out samples for each live ray, at slots j * k_out + k (unused slots zeroed).
layout(local_size_x = 64) in;
#include "generated/app.glsl"
#include "wavefront.glsl"

void main() {
    uint j = gl_GlobalInvocationID.x;
    if (j >= ctl.n_in) return;
    uint ray = lists[ctl.list_in + j];
    Ray r = rays[ray];
    uint n = 0u;
    bool exhausted = false;
    for (uint k = 0u; k < ctl.k_out; ++k) {
        vec4 s = vec4(0.0);
        if (!exhausted) {
            if (next_sample(r, s)) n += 1u;
            else { exhausted = true; s = vec4(0.0); }
        }
        store_sample(ctl.samples_out + j * ctl.k_out + k, s, r);
    }
    rays[ray] = r;
    ray_flags[ray] = n | (exhausted ? EXHAUSTED : 0u);
}
