#version 450
#extension GL_EXT_control_flow_attributes : require
// Fused neural SDF: camera ray -> unit-cube clip -> sphere tracing -> normal from four tetrahedron samples ->
// shading, all in one dispatch (the ray logic is lib/ray_sdf.glsl, shared with the unfused stages). One
// network call site, so the baked MLP is emitted once.
layout(local_size_x = WORKGROUP_X, local_size_y = WORKGROUP_Y) in;  // apps/base.py workgroup_shape

#include "ray_sdf.glsl"
#include "generated/grid_levels.glsl"
#include "generated/variant.glsl"
#include "grid.glsl"
#include "evaluations.glsl"

void main() {
    variant_prologue();  // before any invocation returns: the shared variant loads weights with a barrier
    uvec2 gid = gl_GlobalInvocationID.xy;
    if (gid.x >= uint(pc.tile_size.x) || gid.y >= uint(pc.tile_size.y)) return;
    Ray r;
    bool alive = ray_init(gid, r);
    vec4 s;
    uint evaluated = 0u;  // network evaluations, added to the tile's counter once at the end
    while (alive && next_sample(r, s)) {
        evaluated += 1u;
        float feat[MLP_IN];
        grid_encode(clamp(s.xyz, 0.0, 1.0), feat);
        float y[MLP_OUT];
        mlp_forward(feat, y);
        alive = consume(r, s, y);
    }
    if (evaluated != 0u) count_evaluations(evaluated);
    write_pixel(gid, uint(pc.tile_size.x), shade(r));
}
