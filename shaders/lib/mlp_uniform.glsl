// Buffered variant: every network's weights in one uniform buffer, as vec4 rows (see glslgen.buffered_mlp).
// Uniform reads are broadcast on GPUs and cheap on CPU drivers. Needs MLP_BINDING and MLP_VEC4S.
layout(std140, set = 0, binding = MLP_BINDING) uniform MlpWeights { vec4 mlp_w4[MLP_VEC4S]; };

void variant_prologue() {}  // nothing to load: uniform reads are broadcast
