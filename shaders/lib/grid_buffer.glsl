// Buffered variant: the grid table in a storage buffer, fp16 pairs packed in uints (GRID_HALF = 1) or fp32.
#include "generated/bind_grid_words.glsl"

void grid_load(uint entry, out float v[GRID_F]) {
#if GRID_HALF && (GRID_F % 2 == 0)
    [[unroll]] for (int k = 0; k < GRID_F / 2; ++k) {
        vec2 h = unpackHalf2x16(grid_words[entry * uint(GRID_F / 2) + uint(k)]);
        v[2 * k] = h.x;
        v[2 * k + 1] = h.y;
    }
#else
    [[unroll]] for (int f = 0; f < GRID_F; ++f) v[f] = uintBitsToFloat(grid_words[entry * uint(GRID_F) + uint(f)]);
#endif
}
