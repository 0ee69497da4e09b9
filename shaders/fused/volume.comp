#version 450
#extension GL_EXT_control_flow_attributes : require
// Fused neural volume: camera ray -> unit-cube clip -> fixed-step marching (t_near + (i + 1/2) dt) ->
// network (RGB + density) -> emission-absorption compositing, stopping when transmittance < min_transmittance.
layout(local_size_x = 8, local_size_y = 8) in;

#define GRID_BINDING 0
#define MLP_BINDING 2

layout(push_constant) uniform Push {
    vec4 cam_x;         // camera axes and origin in world space (xyz); cam_x.w: density_scale
    vec4 cam_y;         // cam_y.w: min_transmittance
    vec4 cam_z;         // cam_z.w: dt
    vec4 cam_o;
    ivec2 frame;
    ivec2 tile_origin;
    ivec2 tile_size;
    float focal;
    float unused;
    int n_steps;
    int mode;           // 0 rgb, 1 opacity, 2 steps
    vec4 background;
} pc;

#include "generated/grid_levels.glsl"
#include "generated/variant.glsl"
#include "grid.glsl"
#include "camera.glsl"
#include "output.glsl"

void main() {
    uvec2 gid = gl_GlobalInvocationID.xy;
    if (gid.x >= uint(pc.tile_size.x) || gid.y >= uint(pc.tile_size.y)) return;
    vec2 pixel = vec2(ivec2(gid) + pc.tile_origin) + 0.5;
    vec3 o = pc.cam_o.xyz;
    vec3 d = camera_ray_dir(pixel, vec2(pc.frame), pc.focal, pc.cam_x.xyz, pc.cam_y.xyz, pc.cam_z.xyz);
    float t_near, t_far;
    unit_box_hits(o, d, t_near, t_far);
    float dt = pc.cam_z.w;
    precise float t = t_near + 0.5 * dt;
    float trans = 1.0;
    vec3 colour = vec3(0.0);
    int steps = 0;
    if (t_near <= t_far) {
        for (int i = 0; i < pc.n_steps + 1; ++i) {
            if (t > t_far || trans < pc.cam_y.w) break;
            precise vec3 p = o + t * d;
            float feat[MLP_IN];
            grid_encode(clamp(p, 0.0, 1.0), feat);
            float y[MLP_OUT];
            mlp_forward(feat, y);
            precise float sigma = y[3] * pc.cam_x.w;
            precise float alpha = 1.0 - exp(-(sigma * dt));
            precise float weight = trans * alpha;
            precise vec3 c = colour + weight * vec3(y[0], y[1], y[2]);
            colour = c;
            precise float tr = trans * (1.0 - alpha);
            trans = tr;
            precise float tn = t + dt;
            t = tn;
            steps += 1;
        }
    }
    vec3 rgb;
    if (pc.mode == 0) rgb = colour + trans * pc.background.rgb;
    else if (pc.mode == 1) rgb = vec3(1.0 - trans);
    else {
        float s = float(steps) / float(pc.n_steps);
        rgb = heat_map(s);
    }
    write_pixel(gid, uint(pc.tile_size.x), rgb);
}
