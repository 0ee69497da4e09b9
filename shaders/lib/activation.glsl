// tcnn output activations, one function each (generated MLPs call act_<name>): generated from
// shader_interface.OUTPUT_ACTIVATIONS with the other shared constants.
#include "generated/constants.glsl"
