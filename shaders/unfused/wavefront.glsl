// Buffers shared by the unfused and fused-rest stages (the "wavefront": rays live in buffers between
// dispatches, as in instant-ngp's testbed). Needs the app's ray_<app>.glsl (Ray, RESULT_N, ...) first, and the
// defines SAMPLE_CAPACITY (samples per batch = rays per tile), SAMPLE_VEC4S (vec4s per sample record) and
// RESULT_FROM_DENSITY (NeRF: result[0] is the density network's first output, the rest the colour network's).
//
// Sample records live in two halves (ping-pong: the fused-rest stage consumes one batch while it generates the
// next); network buffers are feature-major, row k of sample s at [k * SAMPLE_CAPACITY + s].
#include "control.glsl"
#include "generated/bind_rays.glsl"
#include "generated/bind_ray_flags.glsl"
#include "generated/bind_lists.glsl"
#include "generated/bind_samples.glsl"
#include "generated/bind_net_out.glsl"
#if RESULT_FROM_DENSITY
#include "generated/bind_net_density.glsl"
#endif

const uint PENDING_MASK = 0xffu;  // ray_flags: samples generated and not yet consumed
const uint EXHAUSTED = 1u << 8;   // next_sample said no more
const uint ALIVE = 1u << 9;

uvec2 pixel_of(uint ray) { return uvec2(ray % uint(pc.tile_size.x), ray / uint(pc.tile_size.x)); }

void load_result(uint s, out float res[RESULT_N]) {
#if RESULT_FROM_DENSITY
    res[0] = net_density[s];
    [[unroll]] for (int k = 1; k < RESULT_N; ++k) res[k] = net_out[uint(k - 1) * SAMPLE_CAPACITY + s];
#else
    [[unroll]] for (int k = 0; k < RESULT_N; ++k) res[k] = net_out[uint(k) * SAMPLE_CAPACITY + s];
#endif
}

void store_sample(uint slot, vec4 s, Ray r) {
    samples[slot * SAMPLE_VEC4S] = s;
#if SAMPLE_VEC4S > 1
    samples[slot * SAMPLE_VEC4S + 1] = vec4(r.d_t.xyz, 0.0);  // the colour network's direction input
#endif
}

// Consume the ray's pending samples of the batch (slots j * k_in ...): false when the ray is finished.
bool consume_pending(uint j, uint flags, inout Ray r) {
    bool alive = true;
    uint n = flags & PENDING_MASK;
    for (uint k = 0u; k < n && alive; ++k) {
        uint s = j * ctl.k_in + k;
        float res[RESULT_N];
        load_result(s, res);
        alive = consume(r, samples[(ctl.samples_in + s) * SAMPLE_VEC4S], res);
    }
    return alive && (flags & EXHAUSTED) == 0u;
}

void append_ray(uint ray, out uint index) {
    index = atomicAdd(ctl.n_out, 1u);
    lists[ctl.list_out + index] = ray;
}
