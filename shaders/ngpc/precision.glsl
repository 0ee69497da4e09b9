// NGPC arithmetic precision. STORE_HALF: values leaving an engine stage (encoder outputs, MLP activations) are
// stored as fp16; ACC_HALF: every multiply-add result is rounded to fp16 too (fp32 accumulation otherwise).
float to_half(float v) { return unpackHalf2x16(packHalf2x16(vec2(v, 0.0))).x; }
#if STORE_HALF
float store_q(float v) { return to_half(v); }
#else
float store_q(float v) { return v; }
#endif
#if ACC_HALF
float acc_q(float v) { return to_half(v); }
#else
float acc_q(float v) { return v; }
#endif
