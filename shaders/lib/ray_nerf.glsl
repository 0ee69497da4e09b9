// NeRF as rays: marching through the scene box that jumps over empty occupancy cells, density = exp(out[0])
// of the density network, colour from the colour network, front-to-back compositing with early termination.
// Steps are dt(t) = clamp(t * cone_angle, dt_min, sqrt(3)) (fixed without cone stepping); the box is the unit
// cube or instant-ngp's [0.5 - s/2, 0.5 + s/2]^3 (AABB_SCALE s, NERF_CASCADES occupancy cascades, cascade c
// covering 2^c times the unit cube). Reference: reference/nerf.py, step for step.
// Contract: see ray_sdf.glsl. The network result is (density-network out[0], r, g, b); a sample's xyz is
// its position in the box mapped to [0,1]^3 (the network's input).
#include "occupancy.glsl"

const float MAX_CONE_DT = 1.7320508;  // float32(sqrt(3)): instant-ngp's largest cone step

#include "generated/push_nerf.glsl"

#include "output.glsl"
#include "march.glsl"

#define RESULT_N 4

struct Ray {
    vec4 d_t;           // direction, next sample's t
    vec4 colour_trans;  // accumulated colour, transmittance
    vec4 tfar_depth;    // x: far end of the unit cube, y: accumulated depth
    ivec4 count;        // x: samples taken, y: samples composited
};

float calc_dt(float t) {
    return clamp(t * pc.cone_angle, pc.dt, MAX_CONE_DT);
}

#if NERF_CASCADES > 1
// instant-ngp's mip_from_dt: the finest cascade holding p, coarser when the step is large.
int cascade_of(vec3 p, float dt) {
    int mip = cascade_at(p);
    float scaled = dt * float(2 * OCCUPANCY_RES);
    if (scaled >= 1.0) {
        int e2;
        frexp(scaled, e2);
        mip = min(max(mip, e2), NERF_CASCADES - 1);
    }
    return mip;
}
#endif

float cell_exit(ivec3 cell, vec3 p, vec3 d, float t, int mip) {
    vec3 bound = from_cascade((vec3(cell) + step(vec3(0.0), d)) / float(OCCUPANCY_RES), mip);
    vec3 tt = mix(vec3(1e30), (bound - p) / d, notEqual(d, vec3(0.0)));
    return t + min(tt.x, min(tt.y, tt.z));
}

// Whole steps of dt (at least one) that take t past the exit of an empty cell: empty space costs one
// iteration per cell instead of one per step.
float steps_to_leave(ivec3 cell, vec3 p, vec3 d, float t, float dt, int mip) {
    float t_exit = cell_exit(cell, p, d, t, mip);
    return max(1.0, ceil((t_exit - t) / dt));
}

// With cone stepping the steps grow with t: take them one at a time until past the cell's exit.
float cone_steps_past(float t, float t_exit) {
    precise float tn = t;
    do {
        tn = tn + calc_dt(tn);
    } while (tn < t_exit);
    return tn;
}

// The cascade and cell a position is looked up in.
void locate(vec3 p, float t, out int mip, out ivec3 cell) {
#if NERF_CASCADES > 1
    mip = cascade_of(p, calc_dt(t));
    cell = occupancy_cell(to_cascade(p, mip));
#else
    mip = 0;
    cell = occupancy_cell(p);
#endif
}

bool ray_init(uvec2 gid, out Ray r) {
    return march_start(gid, pc.dt, 0.5, r.d_t, r.colour_trans, r.tfar_depth, r.count);
}

bool next_sample(inout Ray r, out vec4 s) {
    s = vec4(0.0);
    vec3 o = pc.cam_o.xyz, d = r.d_t.xyz;
    float dt_min = pc.dt, t_far = r.tfar_depth.x;
    precise float t = r.d_t.w;
    if (r.count.x >= pc.n_steps + 1 || t > t_far) return false;
    precise vec3 p = o + t * d;
    if (pc.use_occupancy != 0.0) {
        int mip;
        ivec3 cell;
        locate(p, t, mip, cell);
        while (!occupied(mip, cell)) {
            precise float tn;
            if (pc.cone_angle == 0.0) tn = t + steps_to_leave(cell, p, d, t, dt_min, mip) * dt_min;
            else tn = cone_steps_past(t, cell_exit(cell, p, d, t, mip));
            t = tn;
            if (t > t_far) { r.d_t.w = t; return false; }
            precise vec3 pn = o + t * d;
            p = pn;
            locate(p, t, mip, cell);
        }
    }
    s = vec4(network_position(p), t);
    precise float tn = t + calc_dt(t);
    r.d_t.w = tn;
    r.count.x += 1;
    return true;
}

bool consume(inout Ray r, vec4 s, float res[RESULT_N]) {
    float weight = composite(r.colour_trans, vec3(res[1], res[2], res[3]), exp(res[0]), calc_dt(s.w));
    precise float nd = r.tfar_depth.y + weight * s.w;
    r.tfar_depth.y = nd;
    r.count.y += 1;
    return !(r.colour_trans.w < pc.min_transmittance);
}

vec3 shade(Ray r) {
    float trans = r.colour_trans.w;
    if (pc.mode == 0) return r.colour_trans.rgb + trans * pc.background.rgb;
    if (pc.mode == 1) return vec3(1.0 - clamp(r.tfar_depth.y / pc.depth_far, 0.0, 1.0));
    if (pc.mode == 2) return vec3(1.0 - trans);
    return heat_map(min(float(r.count.y) / 64.0, 1.0));
}
