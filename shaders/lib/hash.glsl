// instant-ngp's coherent prime hash: XOR over dimensions of coord_i * prime_i (uint wraparound); the primes are
// encoding.HASH_PRIMES (generated/constants.glsl).
#include "generated/constants.glsl"
uint grid_hash(uvec2 c) { return (c.x * HASH_PRIME_0) ^ (c.y * HASH_PRIME_1); }
uint grid_hash(uvec3 c) { return (c.x * HASH_PRIME_0) ^ (c.y * HASH_PRIME_1) ^ (c.z * HASH_PRIME_2); }

// Per-pixel jitter: an integer hash of (pixel x, pixel y, seed) (Wellons' lowbias32, chained), then one exact
// conversion to a float in [0, 1): the NumPy reference (reference/camera.py jitter) gets the same float32.
uint lowbias32(uint x) {
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
    return x;
}
float pixel_jitter(uvec2 pixel, uint seed) {
    uint h = lowbias32(pixel.x + lowbias32(pixel.y + lowbias32(seed)));
    return float(h >> 8) * (1.0 / 16777216.0);
}
