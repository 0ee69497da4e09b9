#version 450
// Dear ImGui vertices (position in pixels, uv, RGBA8 colour) to clip space.
layout(location = 0) in vec2 position;
layout(location = 1) in vec2 uv;
layout(location = 2) in vec4 colour;
#include "generated/push_overlay_imgui.glsl"
layout(location = 0) out vec2 v_uv;
layout(location = 1) out vec4 v_colour;

void main() {
    v_uv = uv;
    v_colour = colour;
    gl_Position = vec4(position * pc.scale + pc.translate, 0.0, 1.0);
}
