// NeRF's occupancy grid and scene box, shared by the marcher (ray_nerf.glsl) and the mesh kernel: the box is the
// unit cube or instant-ngp's [0.5 - s/2, 0.5 + s/2]^3 (AABB_SCALE s, NERF_CASCADES occupancy cascades, cascade c
// covering 2^c times the unit cube). Reference: reference/nerf.py.
#include "generated/bind_occupancy.glsl"

#ifndef AABB_SCALE
#define AABB_SCALE 1
#endif
#ifndef NERF_CASCADES
#define NERF_CASCADES 1
#endif
#if AABB_SCALE > 1
#define BOX_LO (0.5 - 0.5 * float(AABB_SCALE))
#define BOX_HI (0.5 + 0.5 * float(AABB_SCALE))
#endif

ivec3 occupancy_cell(vec3 p) {
    return min(ivec3(clamp(p, 0.0, 1.0) * float(OCCUPANCY_RES)), ivec3(OCCUPANCY_RES - 1));
}

bool occupied(int mip, ivec3 cell) {
    return texelFetch(occupancy, mip * OCCUPANCY_RES * OCCUPANCY_RES * OCCUPANCY_RES
                                 + cell.x + OCCUPANCY_RES * (cell.y + OCCUPANCY_RES * cell.z)).r != 0u;
}

// instant-ngp's mip_from_pos: the finest cascade holding p.
int cascade_at(vec3 p) {
    vec3 a = abs(p - 0.5);
    int e;
    frexp(max(a.x, max(a.y, a.z)), e);
    return clamp(e + 1, 0, NERF_CASCADES - 1);
}

// p in cascade mip's unit cube and back (cascade 0 is the unit cube itself).
vec3 to_cascade(vec3 p, int mip) {
    if (mip == 0) return p;
    precise vec3 q = (p - 0.5) * exp2(-float(mip)) + 0.5;
    return q;
}

vec3 from_cascade(vec3 q, int mip) {
    if (mip == 0) return q;
    precise vec3 p = (q - 0.5) * exp2(float(mip)) + 0.5;
    return p;
}

// The network's input for a position in the scene box: the box mapped to [0,1]^3.
vec3 network_position(vec3 p) {
#if AABB_SCALE > 1
    precise vec3 x = (p - BOX_LO) / float(AABB_SCALE);
    return x;
#else
    return p;
#endif
}
