// tcnn output activations: 0 none, 1 ReLU, 2 sigmoid, 3 exponential.
float output_activation(float v) {
#if MLP_OUTPUT_ACTIVATION == 1
    return max(v, 0.0);
#elif MLP_OUTPUT_ACTIVATION == 2
    return 1.0 / (1.0 + exp(-v));
#elif MLP_OUTPUT_ACTIVATION == 3
    return exp(v);
#else
    return v;
#endif
}
