#version 450
#include "generated/bind_atlas.glsl"
layout(location = 0) in vec2 v_uv;
layout(location = 1) in vec4 v_colour;
layout(location = 0) out vec4 colour;

void main() { colour = v_colour * texture(atlas, v_uv); }
