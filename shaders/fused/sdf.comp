#version 450
#extension GL_EXT_control_flow_attributes : require
// Fused neural SDF: camera ray -> unit-cube clip -> sphere tracing (t += 0.95 sdf until sdf < epsilon) ->
// normal from four tetrahedron samples -> shading. One network evaluation site, so the baked MLP is emitted
// once: the loop first traces, then (phase k = 0..3) samples the normal.
layout(local_size_x = 8, local_size_y = 8) in;

#define GRID_BINDING 0
#define MLP_BINDING 2

layout(push_constant) uniform Push {
    vec4 cam_x;         // camera axes and origin in world space (xyz); cam_x.w: normal_h
    vec4 cam_y;
    vec4 cam_z;
    vec4 cam_o;         // w: depth_far for the depth mode
    ivec2 frame;
    ivec2 tile_origin;
    ivec2 tile_size;
    float focal;
    float epsilon;
    int max_steps;
    int mode;           // 0 shaded, 1 normals, 2 depth, 3 steps
    vec4 background;
} pc;

#include "generated/grid_levels.glsl"
#include "generated/variant.glsl"
#include "grid.glsl"
#include "camera.glsl"
#include "output.glsl"

const vec3 TETRA[4] = vec3[](vec3(1, -1, -1), vec3(-1, -1, 1), vec3(-1, 1, -1), vec3(1, 1, 1));
const vec3 LIGHT = vec3(0.48, 0.8, 0.36);
const vec3 ALBEDO = vec3(0.85, 0.78, 0.68);
const float AMBIENT = 0.15;

float sdf_eval(vec3 p) {
    float feat[MLP_IN];
    grid_encode(clamp(p, 0.0, 1.0), feat);
    float y[MLP_OUT];
    mlp_forward(feat, y);
    return y[0];
}

void main() {
    uvec2 gid = gl_GlobalInvocationID.xy;
    if (gid.x >= uint(pc.tile_size.x) || gid.y >= uint(pc.tile_size.y)) return;
    vec2 pixel = vec2(ivec2(gid) + pc.tile_origin) + 0.5;
    vec3 o = pc.cam_o.xyz;
    vec3 d = camera_ray_dir(pixel, vec2(pc.frame), pc.focal, pc.cam_x.xyz, pc.cam_y.xyz, pc.cam_z.xyz);
    float t, t_far;
    unit_box_hits(o, d, t, t_far);

    int steps = 0;
    bool hit = false;
    int phase = -1;  // -1: tracing; 0..3: normal samples
    vec3 hit_p = vec3(0.0);
    vec3 normal = vec3(0.0);
    if (t <= t_far) {
        for (int it = 0; it < pc.max_steps + 4; ++it) {
            vec3 q;
            if (phase < 0) {
                if (steps >= pc.max_steps || t > t_far) break;
                precise vec3 p = o + t * d;
                q = p;
            } else {
                precise vec3 p = hit_p + pc.cam_x.w * TETRA[phase];
                q = p;
            }
            float s = sdf_eval(q);
            if (phase < 0) {
                steps += 1;
                if (s < pc.epsilon) { hit = true; hit_p = q; phase = 0; }
                else { precise float nt = t + 0.95 * s; t = nt; }
            } else {
                normal += TETRA[phase] * s;
                phase += 1;
                if (phase == 4) break;
            }
        }
    }

    vec3 n = normal / max(length(normal), 1e-12);
    vec3 rgb = pc.background.rgb;
    if (pc.mode == 3) {
        float s = float(steps) / float(pc.max_steps);
        rgb = heat_map(s);
    } else if (hit) {
        if (pc.mode == 0) rgb = ALBEDO * (AMBIENT + (1.0 - AMBIENT) * max(dot(n, LIGHT), 0.0));
        else if (pc.mode == 1) rgb = n * 0.5 + 0.5;
        else rgb = vec3(1.0 - clamp(t / pc.cam_o.w, 0.0, 1.0));
    }
    write_pixel(gid, uint(pc.tile_size.x), rgb);
}
