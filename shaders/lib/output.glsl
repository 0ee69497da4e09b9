// The frame (tile) buffer: RGBA8 per pixel, quantised as floor(clamp(c, 0, 1) * 255 + 0.5) like the reference.
#include "generated/bind_out_rgba.glsl"

void write_pixel(uvec2 gid, uint tile_width, vec3 rgb) {
    precise vec3 scaled = clamp(rgb, 0.0, 1.0) * 255.0 + 0.5;
    uvec3 q = uvec3(floor(scaled));
    out_rgba[gid.y * tile_width + gid.x] = q.r | (q.g << 8) | (q.b << 16) | (255u << 24);
}

// Heat colour for s in [0, 1] (blue -> green -> red): step and sample counts.
vec3 heat_map(float s) { return vec3(s, 4.0 * s * (1.0 - s), 1.0 - s); }
