// Baked variant: the grid table read through a uniform texel buffer (fast on CPU drivers).
// One texel per entry for F <= 4, two RGBA texels per entry for F = 8.
#include "generated/bind_grid_tex.glsl"

void grid_load(uint entry, out float v[GRID_F]) {
#if GRID_F <= 4
    vec4 t = texelFetch(grid_tex, int(entry));
    [[unroll]] for (int f = 0; f < GRID_F; ++f) v[f] = t[f];
#else
    vec4 a = texelFetch(grid_tex, int(2u * entry));
    vec4 b = texelFetch(grid_tex, int(2u * entry + 1u));
    [[unroll]] for (int f = 0; f < 4; ++f) { v[f] = a[f]; v[f + 4] = b[f]; }
#endif
}
