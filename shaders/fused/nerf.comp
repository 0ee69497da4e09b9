#version 450
#extension GL_EXT_control_flow_attributes : require
// Fused NeRF: camera ray -> unit-cube clip -> fixed-step marching that jumps over empty occupancy cells ->
// hash grid -> density MLP (density = exp(out[0])) -> [out, SH(dir)] -> colour MLP (sigmoid) ->
// front-to-back compositing with early termination -> background. Nothing is written between the stages.
layout(local_size_x = 8, local_size_y = 8) in;

#define GRID_BINDING 0
#define MLP_BINDING 2
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

#include "generated/grid_levels.glsl"
#include "generated/variant.glsl"
#include "grid.glsl"
#include "camera.glsl"
#include "sh.glsl"
#include "output.glsl"

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

void main() {
    uvec2 gid = gl_GlobalInvocationID.xy;
    if (gid.x >= uint(pc.tile_size.x) || gid.y >= uint(pc.tile_size.y)) return;
    vec2 pixel = vec2(ivec2(gid) + pc.tile_origin) + 0.5;
    vec3 o = pc.cam_o.xyz;
    vec3 d = camera_ray_dir(pixel, vec2(pc.frame), pc.focal, pc.cam_x.xyz, pc.cam_y.xyz, pc.cam_z.xyz);
    float t_near, t_far;
    unit_box_hits(o, d, t_near, t_far);
    float dt = pc.cam_z.w;
    bool use_occupancy = pc.cam_o.w != 0.0;

    float rgb_in[MLP_OUT + SH_DEGREE * SH_DEGREE];
    float sh[SH_DEGREE * SH_DEGREE];
    sh_encode(d, sh);
    [[unroll]] for (int k = 0; k < SH_DEGREE * SH_DEGREE; ++k) rgb_in[MLP_OUT + k] = sh[k];

    precise float t = t_near + 0.5 * dt;
    float trans = 1.0;
    vec3 colour = vec3(0.0);
    float depth = 0.0;
    int samples = 0;
    if (t_near <= t_far) {
        // Outer loop: one network evaluation per iteration, so the lanes of a SIMD group evaluate together.
        // Inner loop: jump over empty occupancy cells without touching the network.
        for (int i = 0; i < pc.n_steps + 1; ++i) {
            if (t > t_far || trans < pc.cam_y.w) break;
            precise vec3 p = o + t * d;
            if (use_occupancy) {
                ivec3 cell = occupancy_cell(p);
                bool skipped = false;
                while (!occupied(cell)) {
                    precise float tn = t + steps_to_leave(cell, p, d, t, dt) * dt;
                    t = tn;
                    if (t > t_far) { skipped = true; break; }
                    precise vec3 pn = o + t * d;
                    p = pn;
                    cell = occupancy_cell(p);
                }
                if (skipped) break;
            }
            float feat[MLP_IN];
            grid_encode(clamp(p, 0.0, 1.0), feat);
            float h[MLP_OUT];
            mlp_forward(feat, h);
            [[unroll]] for (int k = 0; k < MLP_OUT; ++k) rgb_in[k] = h[k];
            float c[3];
            rgb_forward(rgb_in, c);
            float sigma = exp(h[0]);
            precise float alpha = 1.0 - exp(-(sigma * dt));
            precise float weight = trans * alpha;
            precise vec3 nc = colour + weight * vec3(c[0], c[1], c[2]);
            colour = nc;
            precise float nd = depth + weight * t;
            depth = nd;
            precise float tr = trans * (1.0 - alpha);
            trans = tr;
            samples += 1;
            precise float tn = t + dt;
            t = tn;
        }
    }
    vec3 rgb;
    if (pc.mode == 0) rgb = colour + trans * pc.background.rgb;
    else if (pc.mode == 1) rgb = vec3(1.0 - clamp(depth / pc.cam_x.w, 0.0, 1.0));
    else if (pc.mode == 2) rgb = vec3(1.0 - trans);
    else {
        float s = min(float(samples) / 64.0, 1.0);
        rgb = heat_map(s);
    }
    write_pixel(gid, uint(pc.tile_size.x), rgb);
}
