#version 450
#extension GL_EXT_control_flow_attributes : require
// Fused-rest: everything but the encoding and the MLP in one kernel per iteration (the paper's "rest of
// kernels fused" configuration): consume the last batch's results (or initialise the ray on the first pass),
// generate the ray's next samples into the other half of the sample buffer and compact it into the output
// list, or shade its pixel when it is finished.
layout(local_size_x = 64) in;
#include "generated/app.glsl"
#include "wavefront.glsl"

void main() {
    uint j = gl_GlobalInvocationID.x;
    if (j >= ctl.n_in) return;
    uint ray;
    Ray r;
    bool alive;
    if (ctl.first != 0u) {
        ray = j;
        alive = ray_init(pixel_of(ray), r);
    } else {
        ray = lists[ctl.list_in + j];
        r = rays[ray];
        alive = consume_pending(j, ray_flags[ray], r);
    }
    // The first sample decides whether the ray goes on; the rest go straight to the buffer (a local array of
    // k_out samples would be dynamically indexed: scratch memory on many drivers).
    vec4 first_sample;
    if (!alive || !next_sample(r, first_sample)) {
        write_pixel(pixel_of(ray), uint(pc.tile_size.x), shade(r));
        return;
    }
    uint index;
    append_ray(ray, index);
    uint base = ctl.samples_out + index * ctl.k_out;
    store_sample(base, first_sample, r);
    uint n = 1u;
    bool exhausted = false;
    for (uint k = 1u; k < ctl.k_out; ++k) {
        vec4 s = vec4(0.0);
        if (!exhausted) {
            if (next_sample(r, s)) n += 1u;
            else { exhausted = true; s = vec4(0.0); }
        }
        store_sample(base + k, s, r);
    }
    rays[ray] = r;
    ray_flags[ray] = n | (exhausted ? EXHAUSTED : 0u);
}
