#version 450
// The rendered frame (RGBA8 words, as the compute kernels write them) stretched over the target with nearest
// sampling (the viewer renders at a fraction of the window when the resolution scale or dynamic resolution
// says so), times 2^exposure. At gain 1 a byte comes out as the same byte.
#include "generated/bind_frame_rgba.glsl"
#include "generated/push_overlay_frame.glsl"
layout(location = 0) out vec4 colour;

void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    ivec2 q = min(p * pc.frame_size / pc.target_size, pc.frame_size - 1);
    vec4 c = unpackUnorm4x8(frame_rgba[q.y * pc.frame_size.x + q.x]);
    colour = vec4(clamp(c.rgb * pc.gain, 0.0, 1.0), 1.0);
}
