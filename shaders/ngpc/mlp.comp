#version 450
#extension GL_EXT_control_flow_attributes : require
// NGPC MLP engine, functionally: one network, one layer at a time, each layer cut into MAC_ROWS x MAC_COLS tiles
// of the MAC array (partial sums of an input tile are accumulated into the output), weights as loaded into the
// array (rounded to the storage precision on upload), activations kept on chip at the storage precision.
// generated/layers.glsl: N_LAYERS, LAYER_IN/LAYER_OUT/LAYER_OFFSET tables, NET_WIDTH (widest layer side) and
// `float output_act(float)`.
layout(local_size_x = 64) in;

#include "../unfused/control.glsl"
#include "generated/bind_in_a.glsl"
#if NET_IN_B > 0
#include "generated/bind_in_b.glsl"
#endif
#include "generated/bind_net_y.glsl"
#include "generated/bind_weights.glsl"
#include "activation.glsl"
#include "precision.glsl"
#include "generated/layers.glsl"

void main() {
    uint s = gl_GlobalInvocationID.x;
    if (s >= ctl.n_samples) return;
    float x[NET_WIDTH];
    [[unroll]] for (int k = 0; k < NET_IN_A; ++k) x[k] = store_q(in_a[uint(k) * SAMPLE_CAPACITY + s]);
#if NET_IN_B > 0
    [[unroll]] for (int k = 0; k < NET_IN_B; ++k) x[NET_IN_A + k] = store_q(in_b[uint(k) * SAMPLE_CAPACITY + s]);
#endif
    float y[NET_WIDTH];
    [[unroll]] for (int layer = 0; layer < N_LAYERS; ++layer) {
        int n_in = LAYER_IN[layer], n_out = LAYER_OUT[layer];
        for (int o = 0; o < n_out; ++o) {                          // output tile row o % MAC_COLS
            float acc = 0.0;
            for (int t = 0; t < n_in; t += MAC_ROWS) {                 // one input tile through the array
                float partial = 0.0;
                for (int i = t; i < min(t + MAC_ROWS, n_in); ++i)
                    partial = acc_q(partial + x[i] * weights[LAYER_OFFSET[layer] + o * n_in + i]);
                acc = acc_q(acc + partial);
            }
            y[o] = store_q(layer == N_LAYERS - 1 ? output_act(acc) : max(acc, 0.0));
        }
        for (int o = 0; o < n_out; ++o) x[o] = y[o];
    }
    [[unroll]] for (int k = 0; k < NET_OUT; ++k) net_y[uint(k) * SAMPLE_CAPACITY + s] = x[k];
}
