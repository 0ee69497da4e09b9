// instant-ngp's coherent prime hash: XOR over dimensions of coord_i * prime_i (uint wraparound); the primes are
// encoding.HASH_PRIMES (generated/constants.glsl).
#include "generated/constants.glsl"
uint grid_hash(uvec2 c) { return (c.x * HASH_PRIME_0) ^ (c.y * HASH_PRIME_1); }
uint grid_hash(uvec3 c) { return (c.x * HASH_PRIME_0) ^ (c.y * HASH_PRIME_1) ^ (c.z * HASH_PRIME_2); }
