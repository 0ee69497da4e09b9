// Neural SDF as rays: sphere tracing (t += 0.95 sdf until sdf < epsilon), then four tetrahedron samples for
// the normal, then ao_samples occlusion samples along the normal, then Lambert + ambient shading times the
// ambient occlusion (ao = clamp(1 - ao_scale * sum_i 2^-i (h_i - sdf(hit + h_i n)), 0, 1), h_i = i ao_step).
//
// The contract every ray_<app>.glsl keeps, so that the fused kernel and the unfused / fused-rest stages run
// the same code: `Ray` (the per-ray state; <= 64 bytes, it lives in a buffer between unfused stages),
// `ray_init` (false: the ray needs no sample), `next_sample` (the next network input position in s.xyz,
// s.w free for the app; false: no more samples), `consume` (one network result RESULT_N floats; false: the ray
// is finished) and `shade`. How many samples a ray may take before it consumes any (1 here: each step depends
// on the last distance) is the app class's `samples_per_step` in Python.
#include "generated/push_sdf.glsl"

#include "output.glsl"
#include "march.glsl"

#define RESULT_N 1

// SDF_TETRA, SDF_LIGHT, SDF_ALBEDO, SDF_AMBIENT, SDF_STEP_SCALE:
#include "generated/constants.glsl"

struct Ray {
    vec4 d_t;       // direction, distance travelled
    vec4 hit_tfar;  // hit point (once hit), far end of the unit cube
    vec4 normal;    // xyz: sum of SDF_TETRA[k] * sdf(hit + h TETRA[k]); w: occlusion sum
    ivec4 state;    // x: phase (-1 tracing, 0..3 normal samples, 4.. occlusion samples), y: tracing steps, z: hit
};

bool ray_init(uvec2 gid, out Ray r) {
    vec3 d;
    float t, t_far;
    primary_ray(gid, d, t, t_far);
    r.d_t = vec4(d, t);
    r.hit_tfar = vec4(0.0, 0.0, 0.0, t_far);
    r.normal = vec4(0.0);
    r.state = ivec4(-1, 0, 0, 0);
    return t <= t_far;
}

vec3 unit_normal(Ray r) { return r.normal.xyz / max(length(r.normal.xyz), 1e-12); }

bool next_sample(inout Ray r, out vec4 s) {
    if (r.state.x < 0) {
        s = vec4(0.0);
        if (r.state.y >= pc.max_steps || r.d_t.w > r.hit_tfar.w) return false;
        precise vec3 p = pc.cam_o.xyz + r.d_t.w * r.d_t.xyz;
        s = vec4(p, 0.0);
    } else if (r.state.x < 4) {
        precise vec3 p = r.hit_tfar.xyz + pc.normal_h * SDF_TETRA[r.state.x];
        s = vec4(p, 0.0);
    } else {
        precise float h = float(r.state.x - 3) * pc.ao_step;  // the distance to the surface if nothing occludes
        precise vec3 p = r.hit_tfar.xyz + h * unit_normal(r);
        s = vec4(p, h);
    }
    return true;
}

bool consume(inout Ray r, vec4 s, float res[RESULT_N]) {
    float sdf = res[0];
    if (r.state.x < 0) {
        r.state.y += 1;
        if (sdf < pc.epsilon) { r.state.z = 1; r.hit_tfar.xyz = s.xyz; r.state.x = 0; }
        else { precise float nt = r.d_t.w + SDF_STEP_SCALE * sdf; r.d_t.w = nt; }
        return true;
    }
    if (r.state.x < 4) {
        r.normal.xyz += SDF_TETRA[r.state.x] * sdf;
    } else {
        precise float occlusion = r.normal.w + ldexp(1.0, 3 - r.state.x) * (s.w - sdf);  // weight 2^-i
        r.normal.w = occlusion;
    }
    r.state.x += 1;
    return r.state.x < 4 + pc.ao_samples;
}

vec3 shade(Ray r) {
    vec3 n = unit_normal(r);
    vec3 rgb = pc.background.rgb;
    precise float ao = clamp(1.0 - pc.ao_scale * r.normal.w, 0.0, 1.0);  // 1 without occlusion samples
    if (pc.mode == 3) {
        rgb = heat_map(float(r.state.y) / float(pc.max_steps));
    } else if (r.state.z != 0) {
        if (pc.mode == 0) rgb = SDF_ALBEDO * ((SDF_AMBIENT + (1.0 - SDF_AMBIENT) * max(dot(n, SDF_LIGHT), 0.0)) * ao);
        else if (pc.mode == 4) rgb = vec3(ao);
        else if (pc.mode == 1) rgb = n * 0.5 + 0.5;
        else rgb = vec3(1.0 - clamp(r.d_t.w / pc.depth_far, 0.0, 1.0));
    }
    return rgb;
}
