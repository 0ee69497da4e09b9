// NeRF as rays: fixed-step marching that jumps over empty occupancy cells, density = exp(out[0]) of the
// density network, colour from the colour network, front-to-back compositing with early termination.
// Contract: see ray_sdf.glsl. The network result is (density-network out[0], r, g, b).
layout(set = 0, binding = 3) uniform usamplerBuffer occupancy;  // OCCUPANCY_RES^3 cells, x fastest

layout(push_constant) uniform Push {
    vec4 cam_x;         // camera axes and origin in world space (xyz); cam_x.w: depth_far
    vec4 cam_y;         // cam_y.w: min_transmittance
    vec4 cam_z;         // cam_z.w: dt
    vec4 cam_o;         // cam_o.w: 1 to use the occupancy grid
    ivec2 frame;
    ivec2 tile_origin;
    ivec2 tile_size;
    float focal;
    float unused;
    int n_steps;
    int mode;           // 0 rgb, 1 depth, 2 opacity, 3 samples
    vec4 background;
} pc;

#include "output.glsl"
#include "march.glsl"

#define RESULT_N 4

struct Ray {
    vec4 d_t;           // direction, next sample's t
    vec4 colour_trans;  // accumulated colour, transmittance
    vec4 tfar_depth;    // x: far end of the unit cube, y: accumulated depth
    ivec4 count;        // x: samples taken, y: samples composited
};

ivec3 occupancy_cell(vec3 p) {
    return min(ivec3(clamp(p, 0.0, 1.0) * float(OCCUPANCY_RES)), ivec3(OCCUPANCY_RES - 1));
}

bool occupied(ivec3 cell) {
    return texelFetch(occupancy, cell.x + OCCUPANCY_RES * (cell.y + OCCUPANCY_RES * cell.z)).r != 0u;
}

// Whole steps of dt (at least one) that take t past the exit of an empty cell: empty space costs one
// iteration per cell instead of one per step.
float steps_to_leave(ivec3 cell, vec3 p, vec3 d, float t, float dt) {
    vec3 bound = (vec3(cell) + step(vec3(0.0), d)) / float(OCCUPANCY_RES);
    vec3 tt = mix(vec3(1e30), (bound - p) / d, notEqual(d, vec3(0.0)));
    float t_exit = t + min(tt.x, min(tt.y, tt.z));
    return max(1.0, ceil((t_exit - t) / dt));
}

bool ray_init(uvec2 gid, out Ray r) {
    return march_start(gid, r.d_t, r.colour_trans, r.tfar_depth, r.count);
}

bool next_sample(inout Ray r, out vec4 s) {
    s = vec4(0.0);
    vec3 o = pc.cam_o.xyz, d = r.d_t.xyz;
    float dt = pc.cam_z.w, t_far = r.tfar_depth.x;
    precise float t = r.d_t.w;
    if (r.count.x >= pc.n_steps + 1 || t > t_far) return false;
    precise vec3 p = o + t * d;
    if (pc.cam_o.w != 0.0) {
        ivec3 cell = occupancy_cell(p);
        while (!occupied(cell)) {
            precise float tn = t + steps_to_leave(cell, p, d, t, dt) * dt;
            t = tn;
            if (t > t_far) { r.d_t.w = t; return false; }
            precise vec3 pn = o + t * d;
            p = pn;
            cell = occupancy_cell(p);
        }
    }
    s = vec4(p, t);
    precise float tn = t + dt;
    r.d_t.w = tn;
    r.count.x += 1;
    return true;
}

bool consume(inout Ray r, vec4 s, float res[RESULT_N]) {
    float weight = composite(r.colour_trans, vec3(res[1], res[2], res[3]), exp(res[0]), pc.cam_z.w);
    precise float nd = r.tfar_depth.y + weight * s.w;
    r.tfar_depth.y = nd;
    r.count.y += 1;
    return !(r.colour_trans.w < pc.cam_y.w);
}

vec3 shade(Ray r) {
    float trans = r.colour_trans.w;
    if (pc.mode == 0) return r.colour_trans.rgb + trans * pc.background.rgb;
    if (pc.mode == 1) return vec3(1.0 - clamp(r.tfar_depth.y / pc.cam_x.w, 0.0, 1.0));
    if (pc.mode == 2) return vec3(1.0 - trans);
    return heat_map(min(float(r.count.y) / 64.0, 1.0));
}
