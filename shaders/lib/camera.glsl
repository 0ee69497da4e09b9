// Pinhole camera rays (instant-ngp / Blender convention: camera looks down -z, y up) and the unit cube.

// Direction through a pixel centre; cx, cy, cz are the camera axes in world space.
vec3 camera_ray_dir(vec2 pixel_centre, vec2 frame, float focal, vec3 cx, vec3 cy, vec3 cz) {
    precise float u = (pixel_centre.x - frame.x * 0.5) / focal;
    precise float v = -((pixel_centre.y - frame.y * 0.5) / focal);
    precise vec3 d = cx * u + cy * v - cz;
    return d / sqrt(dot(d, d));
}

// Slab test against [0,1]^3; t_near is clamped to 0 for rays starting inside. Miss when t_near > t_far.
// The scene box [BOX_LO, BOX_HI]^3: the unit cube unless the app defines it (NeRF's aabb_scale).
#ifndef BOX_LO
#define BOX_LO 0.0
#define BOX_HI 1.0
#endif

void unit_box_hits(vec3 o, vec3 d, out float t_near, out float t_far) {
    vec3 inv = 1.0 / d;
    vec3 t0 = (vec3(BOX_LO) - o) * inv;
    vec3 t1 = (vec3(BOX_HI) - o) * inv;
    vec3 lo = min(t0, t1);
    vec3 hi = max(t0, t1);
    t_near = max(max(max(lo.x, lo.y), lo.z), 0.0);
    t_far = min(min(hi.x, hi.y), hi.z);
}
