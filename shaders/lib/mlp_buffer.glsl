// Buffered variant: MLP weights in a uniform buffer as vec4 rows (each (out, in) layer row-major, every row
// zero-padded to a multiple of 4 inputs). Uniform reads are broadcast on GPUs and cheap on CPU drivers.
// Needs MLP_IN, MLP_WIDTH (multiple of 4), MLP_HIDDEN (hidden layer count), MLP_OUT, MLP_OUTPUT_ACTIVATION,
// MLP_VEC4S (total vec4s).
#include "activation.glsl"
layout(std140, set = 0, binding = MLP_BINDING) uniform MlpWeights { vec4 mlp_w4[MLP_VEC4S]; };

#define MLP_IN4 ((MLP_IN + 3) / 4)
#define MLP_W4 (MLP_WIDTH / 4)

void mlp_forward(in float x[MLP_IN], out float y[MLP_OUT]) {
    vec4 xin[MLP_IN4];
    [[unroll]] for (int k = 0; k < MLP_IN4; ++k) {
        [[unroll]] for (int c = 0; c < 4; ++c) xin[k][c] = (4 * k + c < MLP_IN) ? x[min(4 * k + c, MLP_IN - 1)] : 0.0;
    }
    vec4 a[MLP_W4];
    [[unroll]] for (int j = 0; j < MLP_WIDTH; ++j) {
        float s = 0.0;
        [[unroll]] for (int k = 0; k < MLP_IN4; ++k) s += dot(mlp_w4[j * MLP_IN4 + k], xin[k]);
        a[j / 4][j % 4] = max(s, 0.0);
    }
    int offset = MLP_WIDTH * MLP_IN4;
    [[unroll]] for (int layer = 1; layer < MLP_HIDDEN; ++layer) {
        vec4 b[MLP_W4];
        [[unroll]] for (int j = 0; j < MLP_WIDTH; ++j) {
            float s = 0.0;
            [[unroll]] for (int k = 0; k < MLP_W4; ++k) s += dot(mlp_w4[offset + j * MLP_W4 + k], a[k]);
            b[j / 4][j % 4] = max(s, 0.0);
        }
        a = b;
        offset += MLP_WIDTH * MLP_W4;
    }
    [[unroll]] for (int j = 0; j < MLP_OUT; ++j) {
        float s = 0.0;
        [[unroll]] for (int k = 0; k < MLP_W4; ++k) s += dot(mlp_w4[offset + j * MLP_W4 + k], a[k]);
        y[j] = output_activation(s);
    }
}
