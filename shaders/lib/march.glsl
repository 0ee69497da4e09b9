// Shared by the 3D apps' ray logic (ray_<app>.glsl), with their push block (cam_x/y/z/o, frame, tile_origin,
// focal) declared first.
#include "camera.glsl"
#include "hash.glsl"

// The tile pixel's primary ray: direction and the unit cube's entry / exit distances (t_near > t_far: miss).
void primary_ray(uvec2 gid, out vec3 d, out float t_near, out float t_far) {
    vec2 pixel = vec2(ivec2(gid) + pc.tile_origin) + 0.5;
    d = camera_ray_dir(pixel, vec2(pc.frame), pc.focal, pc.cam_x, pc.cam_y, pc.cam_z);
    unit_box_hits(pc.cam_o, d, t_near, t_far);
}

// The fixed-step marchers' (volume, NeRF) ray start: the first sample the fraction `offset` of a step (dt) past
// the cube's entry, nothing composited, transmittance 1, the exit distance in t_far.x; false on a miss.
bool march_start(uvec2 gid, float dt, float offset, out vec4 d_t, out vec4 colour_trans, out vec4 t_far,
                 out ivec4 count) {
    vec3 d;
    float t_near, t_exit;
    primary_ray(gid, d, t_near, t_exit);
    precise float t = t_near + offset * dt;
    d_t = vec4(d, t);
    colour_trans = vec4(0.0, 0.0, 0.0, 1.0);
    t_far = vec4(t_exit, 0.0, 0.0, 0.0);
    count = ivec4(0);
    return t_near <= t_exit;
}

// Front-to-back emission-absorption compositing of one sample (colour c, density sigma, step dt) into
// (colour, transmittance); returns the sample's weight.
float composite(inout vec4 colour_trans, vec3 c, float sigma, float dt) {
    precise float alpha = 1.0 - exp(-(sigma * dt));
    precise float weight = colour_trans.w * alpha;
    precise vec3 nc = colour_trans.rgb + weight * c;
    precise float tr = colour_trans.w * (1.0 - alpha);
    colour_trans = vec4(nc, tr);
    return weight;
}
