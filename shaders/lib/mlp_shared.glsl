// Shared variants (tiny-cuda-nn's fully fused MLP shape): the workgroup loads every network's weights once from
// a storage buffer into shared memory, then each invocation's MLP reads them from there; activations stay in
// registers. Weights are vec4 rows (see glslgen.buffered_mlp), stored as fp16 (SHARED_HALF = 1: a uvec2 holds
// 4 halves, exact for fp16 models, half the shared memory) or fp32. SHARED_F16_MATH = 1 (shared-fp16, needs
// shaderFloat16): the MLP computes in fp16 on mlp_w16's f16vec4 rows. Needs MLP_VEC4S; every kernel calls
// variant_prologue() first, in uniform control flow (it has a barrier).
#if SHARED_F16_MATH
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
#if SHARED_HALF
#include "generated/bind_mlp_g_half.glsl"
shared uvec2 mlp_s[MLP_VEC4S];
vec4 mlp_w(uint i) { uvec2 u = mlp_s[i]; return vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y)); }
#if SHARED_F16_MATH
// a bit cast, no conversion: the halves are used as they are stored
f16vec4 mlp_w16(uint i) { uvec2 u = mlp_s[i]; return f16vec4(unpackFloat2x16(u.x), unpackFloat2x16(u.y)); }
#endif
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
