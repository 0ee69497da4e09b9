// Real spherical harmonics of a unit direction, tcnn's SphericalHarmonics encoding (SH_DEGREE^2 values);
// coefficients SH_* from shader_interface.SH_COEFFICIENTS.
#include "generated/constants.glsl"
void sh_encode(vec3 d, out float sh[SH_DEGREE * SH_DEGREE]) {
    float x = d.x, y = d.y, z = d.z;
    float xy = x * y, xz = x * z, yz = y * z, x2 = x * x, y2 = y * y, z2 = z * z;
    sh[0] = SH_C0;
#if SH_DEGREE > 1
    sh[1] = -SH_C1 * y;
    sh[2] = SH_C1 * z;
    sh[3] = -SH_C1 * x;
#endif
#if SH_DEGREE > 2
    sh[4] = SH_C2_XY * xy;
    sh[5] = -SH_C2_XY * yz;
    sh[6] = SH_C2_ZZ * z2 - SH_C2_0;
    sh[7] = -SH_C2_XY * xz;
    sh[8] = SH_C2_XX * x2 - SH_C2_XX * y2;
#endif
#if SH_DEGREE > 3
    sh[9] = SH_C3_A * y * (-3.0 * x2 + y2);
    sh[10] = SH_C3_B * xy * z;
    sh[11] = SH_C3_C * y * (1.0 - 5.0 * z2);
    sh[12] = SH_C3_D * z * (5.0 * z2 - 3.0);
    sh[13] = SH_C3_C * x * (1.0 - 5.0 * z2);
    sh[14] = SH_C3_E * z * (x2 - y2);
    sh[15] = SH_C3_A * x * (-x2 + 3.0 * y2);
#endif
}
