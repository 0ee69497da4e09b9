#version 450
#extension GL_EXT_control_flow_attributes : require
// Fused neural volume: camera ray -> unit-cube clip -> fixed-step marching -> network (RGB + density) ->
// emission-absorption compositing with early termination, all in one dispatch (ray logic: lib/ray_volume.glsl).
layout(local_size_x = WORKGROUP_X, local_size_y = WORKGROUP_Y) in;  // apps/base.py workgroup_shape

#include "ray_volume.glsl"
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
