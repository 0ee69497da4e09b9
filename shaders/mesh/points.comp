#version 450
#extension GL_EXT_control_flow_attributes : require
// The field at points, for mesh export: one invocation per point, the same grid encoding and networks as the
// fused kernels. FIELD_APP 0 SDF (value: distance), 1 NeRF (value: the density network's raw out[0], i.e. log
// density, -10000 in an empty occupancy cell as instant-ngp's marching cubes), 2 volume (value: density
// out[3]). POINTS_GRID 1: the points are the grid's (origin + spacing * index), one value each; 0: positions
// and view directions from `points`, four values each (value, r, g, b). Reference: reference/points.py.
layout(local_size_x = 64) in;

#include "generated/constants.glsl"
#include "generated/push_points.glsl"
#include "generated/bind_point_values.glsl"
#if !POINTS_GRID
#include "generated/bind_points.glsl"
#endif
#if FIELD_APP == 1
#include "occupancy.glsl"
#include "sh.glsl"
#endif
#include "generated/grid_levels.glsl"
#include "generated/variant.glsl"
#include "grid.glsl"
#include "evaluations.glsl"

void main() {
    variant_prologue();  // before any invocation returns: the shared variant loads weights with a barrier
    uint i = gl_GlobalInvocationID.x;
    if (i >= pc.count) return;
#if POINTS_GRID
    uint k = pc.first + i;
    uint nx = uint(pc.grid.x), ny = uint(pc.grid.y);
    precise vec3 p = pc.origin + pc.spacing * vec3(float(k % nx), float((k / nx) % ny), float(k / (nx * ny)));
#else
    vec3 p = vec3(points[6 * i], points[6 * i + 1], points[6 * i + 2]);
    vec3 d = vec3(points[6 * i + 3], points[6 * i + 4], points[6 * i + 5]);
#endif
    float feat[MLP_IN];
#if FIELD_APP == 1
    grid_encode(clamp(network_position(p), 0.0, 1.0), feat);
#else
    grid_encode(clamp(p, 0.0, 1.0), feat);
#endif
    float y[MLP_OUT];
    mlp_forward(feat, y);
    count_evaluations(1u);
#if FIELD_APP == 0
    float value = y[0];
    vec3 rgb = vec3(0.0);
#elif FIELD_APP == 1
    float value = y[0];
    int mip = cascade_at(p);
    if (!occupied(mip, occupancy_cell(to_cascade(p, mip)))) value = -10000.0;
    vec3 rgb = vec3(0.0);
#if !POINTS_GRID
    float rgb_in[MLP_OUT + SH_DEGREE * SH_DEGREE];  // [density-network outputs, SH(dir)]
    float sh[SH_DEGREE * SH_DEGREE];
    sh_encode(d, sh);
    [[unroll]] for (int k = 0; k < MLP_OUT; ++k) rgb_in[k] = y[k];
    [[unroll]] for (int k = 0; k < SH_DEGREE * SH_DEGREE; ++k) rgb_in[MLP_OUT + k] = sh[k];
    float c[3];
    rgb_forward(rgb_in, c);
    rgb = vec3(c[0], c[1], c[2]);
#endif
#else
    float value = y[3];
    vec3 rgb = vec3(y[0], y[1], y[2]);
#endif
#if POINTS_GRID
    point_values[i] = value;
#else
    point_values[4 * i] = value;
    point_values[4 * i + 1] = rgb.r;
    point_values[4 * i + 2] = rgb.g;
    point_values[4 * i + 3] = rgb.b;
#endif
}
