// instant-ngp's coherent prime hash: XOR over dimensions of coord_i * prime_i (uint wraparound).
uint grid_hash(uvec2 c) { return c.x ^ (c.y * 2654435761u); }
uint grid_hash(uvec3 c) { return c.x ^ (c.y * 2654435761u) ^ (c.z * 805459861u); }
