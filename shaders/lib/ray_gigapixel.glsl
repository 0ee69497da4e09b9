// Gigapixel image (GIA) as rays: one sample per pixel, its image-plane coordinate. Shared by the fused kernel
// and the unfused / fused-rest stages (see ray_sdf.glsl for the contract).
#include "generated/push_gigapixel.glsl"

#include "output.glsl"
#define RESULT_N 3

struct Ray {
    vec4 uv;   // xy: image-plane coordinate; z: 1 once sampled
    vec4 rgb;  // network output once composited
};

bool ray_init(uvec2 gid, out Ray r) {
    precise vec2 pixel = vec2(ivec2(gid) + pc.tile_origin) + 0.5;
    precise vec2 uv = pc.window_origin + pixel * pc.pixel_step;
    r.uv = vec4(uv, 0.0, 0.0);
    r.rgb = vec4(pc.background);
    return all(greaterThanEqual(uv, vec2(0.0))) && all(lessThanEqual(uv, vec2(1.0)));
}

bool next_sample(inout Ray r, out vec4 s) {
    s = vec4(r.uv.xy, 0.0, 0.0);
    if (r.uv.z != 0.0) return false;
    r.uv.z = 1.0;
    return true;
}

bool consume(inout Ray r, vec4 s, float res[RESULT_N]) {
    r.rgb = vec4(res[0], res[1], res[2], 1.0);
    return false;
}

vec3 shade(Ray r) { return r.rgb.rgb; }
