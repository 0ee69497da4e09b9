// Shared variant (tiny-cuda-nn's fully fused MLP shape): the workgroup loads every network's weights once from a
// storage buffer into shared memory, then each invocation's MLP reads them from there; activations stay in
// registers. Weights are vec4 rows (see glslgen.buffered_mlp), stored as fp16 (SHARED_HALF = 1: a uvec2 holds
// 4 halves, exact for fp16 models, half the shared memory) or fp32. Needs MLP_VEC4S; every
// kernel calls variant_prologue() first, in uniform control flow (it has a barrier).
#if SHARED_HALF
#include "generated/bind_mlp_g_half.glsl"
shared uvec2 mlp_s[MLP_VEC4S];
vec4 mlp_w(uint i) { uvec2 u = mlp_s[i]; return vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y)); }
#else
#include "generated/bind_mlp_g_float.glsl"
shared vec4 mlp_s[MLP_VEC4S];
vec4 mlp_w(uint i) { return mlp_s[i]; }
#endif

void variant_prologue() {
    uint threads = gl_WorkGroupSize.x * gl_WorkGroupSize.y * gl_WorkGroupSize.z;
    for (uint i = gl_LocalInvocationIndex; i < uint(MLP_VEC4S); i += threads) mlp_s[i] = mlp_g[i];
    barrier();
}
