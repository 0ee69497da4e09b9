// Multi-resolution grid encoding (hash / dense / low-res dense, tcnn's arithmetic; simplex: GRID_SIMPLEX).
// Needs: GRID_DIMS, GRID_LEVELS, GRID_F, the LEVEL_* constant tables (generated/grid_levels.glsl)
// and `void grid_load(uint entry, out float v[GRID_F])` from the kernel variant.
#include "hash.glsl"

#if GRID_DIMS == 2
#define gvec vec2
#define guvec uvec2
#define givec ivec2
#else
#define gvec vec3
#define guvec uvec3
#define givec ivec3
#endif

uint grid_index(const int level, guvec c) {
    uint index;
    if (LEVEL_HASHED[level]) {
        index = grid_hash(c) & (LEVEL_SIZE[level] - 1u);  // T is a power of two: modulo is a mask
    } else {
        uint res = LEVEL_RES[level];
#if GRID_DIMS == 2
        index = (c.x + c.y * res) % LEVEL_SIZE[level];
#else
        index = (c.x + (c.y + c.z * res) * res) % LEVEL_SIZE[level];
#endif
    }
    return LEVEL_OFFSET[level] + index;
}

#if GRID_SIMPLEX
// One level of the encoding at x (level l's GRID_F features).
// Simplex grid: skew the level position, sort the fractional parts (descending; ties keep the lower dimension
// first), and interpolate the n+1 vertices with barycentric weights 1 - f(1), f(1) - f(2), ..., f(n).
void grid_encode_level(const int l, gvec x, out float v[GRID_F]) {
    [[unroll]] for (int f = 0; f < GRID_F; ++f) v[f] = 0.0;
    {
        precise gvec pos = gvec(LEVEL_SCALE[l]) * x + gvec(0.5);
        precise float total = pos[0];
        [[unroll]] for (int d = 1; d < GRID_DIMS; ++d) { precise float t2 = total + pos[d]; total = t2; }
        precise gvec skewed = pos + gvec(SIMPLEX_SKEW * total);
        gvec cellf = floor(skewed);
        gvec frac = skewed - cellf;
        guvec cell = guvec(givec(cellf));
        int rank[GRID_DIMS];
        float ordered[GRID_DIMS];
        [[unroll]] for (int i = 0; i < GRID_DIMS; ++i) {
            int r = 0;
            [[unroll]] for (int j = 0; j < GRID_DIMS; ++j) {
                if (j != i && (frac[j] > frac[i] || (frac[j] == frac[i] && j < i))) r += 1;
            }
            rank[i] = r;
        }
        [[unroll]] for (int i = 0; i < GRID_DIMS; ++i) {
            [[unroll]] for (int k = 0; k < GRID_DIMS; ++k) if (rank[i] == k) ordered[k] = frac[i];
        }
        [[unroll]] for (int k = 0; k <= GRID_DIMS; ++k) {
            float w = k == 0 ? 1.0 - ordered[0] : (k == GRID_DIMS ? ordered[GRID_DIMS - 1] : ordered[k - 1] - ordered[k]);
            guvec c = cell;
            [[unroll]] for (int i = 0; i < GRID_DIMS; ++i) if (rank[i] < k) c[i] += 1u;
            float e[GRID_F];
            grid_load(grid_index(l, c), e);
            [[unroll]] for (int f = 0; f < GRID_F; ++f) v[f] += w * e[f];
        }
    }
}
#else
void grid_encode_level(const int l, gvec x, out float v[GRID_F]) {
    [[unroll]] for (int f = 0; f < GRID_F; ++f) v[f] = 0.0;
    {
        // tcnn uses fmaf here; a separate multiply and add (precise: never contracted) gives the same bits
        // on every driver (lavapipe lowers fma to mul+add), at most 1 ulp of pos away from tcnn.
        precise gvec pos = gvec(LEVEL_SCALE[l]) * x + gvec(0.5);
        gvec cellf = floor(pos);
        gvec frac = pos - cellf;
        guvec cell = guvec(givec(cellf));
        [[unroll]] for (int corner = 0; corner < (1 << GRID_DIMS); ++corner) {
            float w = 1.0;
            guvec c = cell;
            [[unroll]] for (int d = 0; d < GRID_DIMS; ++d) {
                if ((corner & (1 << d)) != 0) { w *= frac[d]; c[d] += 1u; }
                else { w *= 1.0 - frac[d]; }
            }
            float e[GRID_F];
            grid_load(grid_index(l, c), e);
            [[unroll]] for (int f = 0; f < GRID_F; ++f) v[f] += w * e[f];
        }
    }
}
#endif

// All levels, level l's features at [l * GRID_F, (l + 1) * GRID_F).
void grid_encode(gvec x, out float feat[GRID_LEVELS * GRID_F]) {
    [[unroll]] for (int l = 0; l < GRID_LEVELS; ++l) {
        float v[GRID_F];
        grid_encode_level(l, x, v);
        [[unroll]] for (int f = 0; f < GRID_F; ++f) feat[l * GRID_F + f] = v[f];
    }
}
