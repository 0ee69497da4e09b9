// The tile's network-evaluation counter: 64 bits in two words (low, high), so a large tile of long marches
// cannot wrap it (1024x1024 rays x 4096 steps is past 2^32).
#include "generated/bind_evaluations.glsl"

void count_evaluations(uint n) {
    uint low = atomicAdd(evaluations[0], n);
    if (low > 0xFFFFFFFFu - n) atomicAdd(evaluations[1], 1u);  // this add wrapped the low word
}
