#version 450
#extension GL_EXT_control_flow_attributes : require
// Cooperative-matrix MLP (tensor cores on NVIDIA, matrix cores on AMD RDNA3 / Intel Arc): one network over the
// unfused pipeline's batch, same bindings as unfused/mlp.comp. A workgroup takes 64 samples: their inputs go to
// shared memory as fp16 (64 x K0, zero-padded), then each layer is a 64 x K by K x N product in 16 x 16 x 16
// tiles (fp16 inputs, fp32 accumulation, as tiny-cuda-nn's fully fused MLP), ReLU back to fp16 in shared
// memory; the last layer's activation and outputs go to the batch. Weights: every layer's W^T zero-padded to
// multiples of 16 and stored row-major (k, n) as fp16 (glslgen.coopmat_weights).
// COOPMAT = 1: VK_KHR_cooperative_matrix; COOPMAT = 0: the same tiles, layouts and roundings with scalar
// arithmetic, so the kernel's data flow is tested on devices without the extension (lavapipe).
#if COOPMAT
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
#endif
layout(local_size_x = 64) in;

#include "../unfused/control.glsl"
#include "generated/bind_in_a.glsl"
#if NET_IN_B > 0
#include "generated/bind_in_b.glsl"
#endif
#include "generated/bind_net_y.glsl"
#include "activation.glsl"
// generated: N_LAYERS, K_MAX, N_MAX, LAYER_K[], LAYER_N[], LAYER_W[] (offsets in halves)
#include "generated/coopmat_layers.glsl"

#define ROWS 64
#define NET_IN (NET_IN_A + NET_IN_B)

#if COOPMAT
#include "generated/bind_w16.glsl"
shared float16_t xs[ROWS * K_MAX];
float16_t to_half(float v) { return float16_t(v); }
float from_half(float16_t v) { return float(v); }
#else
#include "generated/bind_w_words.glsl"
shared float xs[ROWS * K_MAX];   // values rounded to fp16, kept as float (no 16-bit features needed)
float to_half(float v) { return unpackHalf2x16(packHalf2x16(vec2(v, 0.0))).x; }
float from_half(float v) { return v; }
float weight(uint i) { return unpackHalf2x16(w_words[i >> 1u])[i & 1u]; }
#endif
shared float ys[ROWS * N_MAX];

float input_value(uint s, uint k) {
    if (k < uint(NET_IN_A)) return in_a[k * SAMPLE_CAPACITY + s];
#if NET_IN_B > 0
    if (k < uint(NET_IN)) return in_b[(k - uint(NET_IN_A)) * SAMPLE_CAPACITY + s];
#endif
    return 0.0;
}

// ys (ROWS x N, row-major) = xs (ROWS x K) * W^T (K x N) of one layer.
void layer_product(uint K, uint N, uint w_offset) {
#if COOPMAT
    uint row_tiles = ROWS / 16;
    for (uint r = gl_SubgroupID; r < row_tiles; r += gl_NumSubgroups) {  // uniform within a subgroup
        for (uint n = 0; n < N; n += 16) {
            coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator> acc =
                coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>(0.0);
            for (uint k = 0; k < K; k += 16) {
                coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA> a;
                coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB> b;
                coopMatLoad(a, xs, r * 16 * K + k, K, gl_CooperativeMatrixLayoutRowMajor);
                coopMatLoad(b, w16, w_offset + k * N + n, N, gl_CooperativeMatrixLayoutRowMajor);
                acc = coopMatMulAdd(a, b, acc);
            }
            coopMatStore(acc, ys, r * 16 * N + n, N, gl_CooperativeMatrixLayoutRowMajor);
        }
    }
#else
    for (uint i = gl_LocalInvocationIndex; i < ROWS * N; i += gl_WorkGroupSize.x) {
        uint r = i / N, n = i % N;
        float acc = 0.0;
        for (uint k = 0; k < K; ++k) acc += from_half(xs[r * K + k]) * weight(w_offset + k * N + n);
        ys[i] = acc;
    }
#endif
}

void main() {
    uint base = gl_WorkGroupID.x * ROWS;
    uint K0 = LAYER_K[0];
    for (uint i = gl_LocalInvocationIndex; i < ROWS * K0; i += gl_WorkGroupSize.x) {
        uint r = i / K0, k = i % K0, s = base + r;
        xs[i] = to_half(s < ctl.n_samples ? input_value(s, k) : 0.0);
    }
    barrier();
    [[unroll]] for (int l = 0; l < N_LAYERS; ++l) {
        uint K = LAYER_K[l], N = LAYER_N[l];
        layer_product(K, N, LAYER_W[l]);
        barrier();
        if (l + 1 < N_LAYERS) {
            for (uint i = gl_LocalInvocationIndex; i < ROWS * N; i += gl_WorkGroupSize.x)
                xs[i] = to_half(max(ys[i], 0.0));  // the next layer's input, row stride N = its K
            barrier();
        }
    }
    uint N = LAYER_N[N_LAYERS - 1];
    for (uint i = gl_LocalInvocationIndex; i < ROWS * uint(NET_OUT); i += gl_WorkGroupSize.x) {
        uint r = i / uint(NET_OUT), k = i % uint(NET_OUT), s = base + r;
        if (s < ctl.n_samples) net_y[k * SAMPLE_CAPACITY + s] = NET_ACT(ys[r * N + k]);
    }
}
