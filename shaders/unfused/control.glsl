// What the host tells the unfused / fused-rest stages for one submission (host-visible, rewritten before
// each; n_out is counted on the GPU and read back). Fields: shader_interface.CONTROL_FIELDS.
#include "generated/bind_ctl.glsl"
