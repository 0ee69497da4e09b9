// Buffered variant: every network's weights in one uniform buffer, as vec4 rows (see glslgen.buffered_mlp).
// Uniform reads are broadcast on GPUs and cheap on CPU drivers. Needs MLP_VEC4S.
#include "generated/bind_mlp_w4.glsl"

void variant_prologue() {}  // nothing to load: uniform reads are broadcast
