// What the host tells the unfused / fused-rest stages for one submission (host-visible, rewritten before
// each; n_out is counted on the GPU and read back).
layout(std430, set = 0, binding = 4) restrict buffer Control {
    uint n_in;        // rays in the input list (pixels when initialising)
    uint n_out;       // rays appended to the output list (atomic)
    uint k_in;        // sample slots per input ray
    uint k_out;       // sample slots per output ray
    uint samples_in;  // first sample of the batch being consumed (0 or SAMPLE_CAPACITY)
    uint samples_out; // first sample of the batch being generated
    uint list_in;     // first entry of the input ray list (0 or SAMPLE_CAPACITY)
    uint list_out;
    uint n_samples;   // samples in the batch the encoding and MLP stages process
    uint first;       // fused-rest: this pass initialises the rays
} ctl;
