#version 450
#extension GL_EXT_control_flow_attributes : require
// Unfused direction encoding (NeRF): spherical harmonics of each sample's ray direction, feature-major.
layout(local_size_x = 64) in;
#include "control.glsl"
#include "generated/bind_samples_in.glsl"
#include "generated/bind_encoded.glsl"
#include "sh.glsl"

void main() {
    uint s = gl_GlobalInvocationID.x;
    if (s >= ctl.n_samples) return;
    vec3 d = samples[(ctl.samples_in + s) * 2u + 1u].xyz;
    float sh[SH_DEGREE * SH_DEGREE];
    sh_encode(d, sh);
    [[unroll]] for (int k = 0; k < SH_DEGREE * SH_DEGREE; ++k) encoded[uint(k) * SAMPLE_CAPACITY + s] = sh[k];
}
