// tcnn output activations, one function each (generated MLPs call act_<name>).
float act_none(float v) { return v; }
float act_relu(float v) { return max(v, 0.0); }
float act_sigmoid(float v) { return 1.0 / (1.0 + exp(-v)); }
float act_exponential(float v) { return exp(v); }
