#version 450
#extension GL_EXT_control_flow_attributes : require
// Unfused MLP: one network (or one layer) per dispatch over the batch, feature-major in and out. Inputs are
// NET_IN_A rows of buffer A followed by NET_IN_B rows of buffer B (NeRF's colour network: density outputs,
// then SH); generated/net.glsl holds net_forward (weights baked, or read from the uniform buffer).
layout(local_size_x = 64) in;

#include "control.glsl"
#include "generated/bind_in_a.glsl"
#if NET_IN_B > 0
#include "generated/bind_in_b.glsl"
#endif
#include "generated/bind_net_y.glsl"
#include "generated/net.glsl"

void main() {
    variant_prologue();
    uint s = gl_GlobalInvocationID.x;
    if (s >= ctl.n_samples) return;
    float x[NET_IN_A + NET_IN_B];
    [[unroll]] for (int k = 0; k < NET_IN_A; ++k) x[k] = in_a[uint(k) * SAMPLE_CAPACITY + s];
#if NET_IN_B > 0
    [[unroll]] for (int k = 0; k < NET_IN_B; ++k) x[NET_IN_A + k] = in_b[uint(k) * SAMPLE_CAPACITY + s];
#endif
    float y[NET_OUT];
    net_forward(x, y);
    [[unroll]] for (int k = 0; k < NET_OUT; ++k) net_y[uint(k) * SAMPLE_CAPACITY + s] = y[k];
}
