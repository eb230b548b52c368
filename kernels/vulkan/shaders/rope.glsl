/* rope.glsl — the rotary angle of one pair, shared by rope.comp and
 * rope_kv_write.comp (so the fused op rotates exactly as rope does):
 * theta_i = pos * freq_scale * base^(-2i/n_dims) / ff_i, reduced mod 2*pi
 * with a two-constant Cody-Waite step before cos/sin, whose accuracy on GPUs
 * is only specified near zero. Returns (cos, sin). */
#ifndef SW_ROPE_GLSL
#define SW_ROPE_GLSL

vec2 rope_cs(int pos, uint i, uint n_dims, float freq_base, float freq_scale, float ff) {
    float inv_freq = freq_scale * pow(freq_base, -2.0 * float(i) / float(n_dims)) / ff;
    float theta = float(pos) * inv_freq;
    float k = round(theta * 0.15915494309189535);
    theta = fma(-k, 6.28318548202514648, theta);
    theta = fma(-k, -1.7484555314695172e-7, theta);
    return vec2(cos(theta), sin(theta));
}

#endif
