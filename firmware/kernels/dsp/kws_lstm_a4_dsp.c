/* kws_lstm_a4_dsp.c - SUB8_LSTM_A4 for Cortex-M cores with the DSP extension (M4, M7), byte-exact with
 * kernels/reference/kws_lstm_a4.c (docs/formats.md section 13, docs/kernels.md).
 *
 * 4-bit weights in layout 0 hold eight weights per 32-bit word (nibble n = input n, two's complement).
 * XOR 0x88888888 turns every nibble into u = w + 8 (0..15), so one AND / one shift-and-AND split a word into
 * even and odd nibbles and UXTB16 / UXTB16 ROR 8 widen them to unsigned int16 pairs (u0,u4)(u2,u6) and
 * (u1,u5)(u3,u7) without any sign extension; four SMLAD then do the eight MACs against the input, widened
 * once per step to int16 pairs in the same order. sum (x - zp) (u - 8) = acc - 8 sum (x - zp): one
 * correction per row. Gate levels, cell and hidden updates: the reference's inline code (kws_lstm_a4.h).
 * Compiled into every build; the runtime picks it where it exists (__ARM_FEATURE_DSP) and the build's
 * optimized kernels are the DSP ones (kws_runner_ref.elf keeps the reference). */
#include <string.h>
#include "kws_kernels.h"
#include "kws_lstm_a4.h"

int kws_lstm_a4_dsp_supported(const kws_lstm_a4_params *p)
{
    return p->weight_bits == 4 && p->n_in % 8 == 0 && p->units % 8 == 0 && ((uintptr_t)p->w & 3) == 0 &&
           ((uintptr_t)p->r & 3) == 0;
}

size_t kws_lstm_a4_dsp_scratch_bytes(const kws_lstm_a4_params *p)
{
    return sizeof(int32_t) * (4u * (size_t)p->units + (size_t)p->n_in / 2u + (size_t)p->units / 2u);
}

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

static inline __attribute__((always_inline)) uint32_t uxtb16_ror8(uint32_t v)
{
    uint32_t r;
    __asm__("uxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

int kws_lstm_a4_dsp_available(void) { return 1; }

static inline uint32_t pair(int32_t lo, int32_t hi) { return (uint32_t)(uint16_t)lo | (uint32_t)(uint16_t)hi << 16; }

/* v[n] + off -> per group of eight: (v0,v4)(v2,v6)(v1,v5)(v3,v7); returns the sum of v + off */
static int32_t widen8(const int8_t *v, int32_t n, int32_t off, uint32_t *out)
{
    int32_t s = 0;
    for (int32_t k = 0; k < n; k += 8, out += 4) {
        int32_t a[8];
        for (int i = 0; i < 8; i++) { a[i] = (int32_t)v[k + i] + off; s += a[i]; }
        out[0] = pair(a[0], a[4]); out[1] = pair(a[2], a[6]); out[2] = pair(a[1], a[5]); out[3] = pair(a[3], a[7]);
    }
    return s;
}

/* two rows per pass: each input pair loaded once for both */
static inline __attribute__((always_inline)) void dot4x2(const uint8_t *row0, const uint8_t *row1,
                                                         const uint32_t *xp, int32_t words, int32_t *a0, int32_t *a1)
{
    int32_t s0 = 0, s1 = 0;
    const uint32_t *w0 = (const uint32_t *)(const void *)row0, *w1 = (const uint32_t *)(const void *)row1;
    for (int32_t i = 0; i < words; i++, xp += 4) {
        const uint32_t x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3];
        uint32_t wd = w0[i] ^ 0x88888888u;
        uint32_t e = wd & 0x0F0F0F0Fu, o = (wd >> 4) & 0x0F0F0F0Fu;
        s0 = __smlad(__uxtb16(e), x0, s0);
        s0 = __smlad(uxtb16_ror8(e), x1, s0);
        s0 = __smlad(__uxtb16(o), x2, s0);
        s0 = __smlad(uxtb16_ror8(o), x3, s0);
        wd = w1[i] ^ 0x88888888u;
        e = wd & 0x0F0F0F0Fu;
        o = (wd >> 4) & 0x0F0F0F0Fu;
        s1 = __smlad(__uxtb16(e), x0, s1);
        s1 = __smlad(uxtb16_ror8(e), x1, s1);
        s1 = __smlad(__uxtb16(o), x2, s1);
        s1 = __smlad(uxtb16_ror8(o), x3, s1);
    }
    *a0 = s0;
    *a1 = s1;
}

void kws_lstm_a4_dsp(const kws_lstm_a4_params *p, int32_t steps, const int8_t *input, int8_t *h, int16_t *c,
                     int32_t *scratch, int8_t *output)
{
    const int32_t u = p->units, nin = p->n_in;
    int32_t *lv = scratch;
    uint32_t *xp = (uint32_t *)(scratch + 4 * u), *hp = xp + nin / 2;
    for (int32_t t = 0; t < steps; t++) {
        const int8_t *x = input + (size_t)t * (size_t)nin;
        const int32_t cx = 8 * widen8(x, nin, -p->zp_x, xp), ch = 8 * widen8(h, u, 0, hp);
        for (int32_t g = 0; g < 4; g++) {
            for (int32_t j = 0; j < u; j += 2) {   /* units is a multiple of 8 */
                const int32_t row = g * u + j;
                const uint8_t *w = p->w + (size_t)row * (size_t)p->w_row_bytes;
                const uint8_t *r = p->r + (size_t)row * (size_t)p->r_row_bytes;
                int32_t a0, a1, b0, b1;
                dot4x2(w, w + p->w_row_bytes, xp, nin / 8, &a0, &a1);
                dot4x2(r, r + p->r_row_bytes, hp, u / 8, &b0, &b1);
                lv[row] = kws_lstm_a4_gate(p, g, row, a0 - cx, b0 - ch);
                lv[row + 1] = kws_lstm_a4_gate(p, g, row + 1, a1 - cx, b1 - ch);
            }
        }
        for (int32_t j = 0; j < u; j++)
            kws_lstm_a4_cell(p, lv[j], lv[u + j], lv[2 * u + j], lv[3 * u + j], &c[j], &h[j]);
        memcpy(output + (size_t)t * (size_t)u, h, (size_t)u);
    }
}

#else
int kws_lstm_a4_dsp_available(void) { return 0; }

void kws_lstm_a4_dsp(const kws_lstm_a4_params *p, int32_t steps, const int8_t *input, int8_t *h, int16_t *c,
                     int32_t *scratch, int8_t *output)
{
    kws_lstm_a4(p, steps, input, h, c, scratch, output);   /* never selected without the DSP extension */
}
#endif
