// Neural volume as rays: fixed-step marching (t_near + (i + u) dt, u = 1/2, or with jitter a hash of the pixel and
// the seed in [0, 1)), emission-absorption compositing of
// (RGB, density) samples, stopping when transmittance < min_transmittance. Contract: see ray_sdf.glsl.
#include "generated/push_volume.glsl"

#include "output.glsl"
#include "march.glsl"

#define RESULT_N 4

struct Ray {
    vec4 d_t;           // direction, next sample's t
    vec4 colour_trans;  // accumulated colour, transmittance
    vec4 t_far;         // x: far end of the unit cube
    ivec4 count;        // x: samples taken, y: samples composited
};

bool ray_init(uvec2 gid, out Ray r) {
    // the frame's pixel, not the tile's: tiles join seamlessly and every pipeline draws the same noise
    float u = pc.jitter != 0 ? pixel_jitter(uvec2(ivec2(gid) + pc.tile_origin), pc.seed) : 0.5;
    return march_start(gid, pc.dt, u, r.d_t, r.colour_trans, r.t_far, r.count);
}

bool next_sample(inout Ray r, out vec4 s) {
    s = vec4(0.0);
    float t = r.d_t.w;
    if (r.count.x >= pc.n_steps + 1 || t > r.t_far.x) return false;
    precise vec3 p = pc.cam_o.xyz + t * r.d_t.xyz;
    s = vec4(p, t);
    precise float tn = t + pc.dt;
    r.d_t.w = tn;
    r.count.x += 1;
    return true;
}

bool consume(inout Ray r, vec4 s, float res[RESULT_N]) {
    precise float sigma = res[3] * pc.density_scale;
    composite(r.colour_trans, vec3(res[0], res[1], res[2]), sigma, pc.dt);
    r.count.y += 1;
    return !(r.colour_trans.w < pc.min_transmittance);
}

vec3 shade(Ray r) {
    float trans = r.colour_trans.w;
    if (pc.mode == 0) return r.colour_trans.rgb + trans * pc.background.rgb;
    if (pc.mode == 1) return vec3(1.0 - trans);
    return heat_map(float(r.count.y) / float(pc.n_steps));
}
