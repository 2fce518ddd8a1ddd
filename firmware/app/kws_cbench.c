/* kws_cbench: per-layer bench and self-test of the optimized convolutions (kws_conv_opt.h) on the
 * Cortex-M DSP boards.
 *
 *   kws_cbench bench               the DS-CNN's convolution layers (training.models.build_dscnn, 24 x 64
 *                                  LFBE input, 64 filters): conv_0 10x4 stride 2 SAME (1 -> 64), a 3x3
 *                                  depthwise SAME and a 1x1 pointwise 64 -> 64 on 12 x 32, random weights
 *                                  and inputs (fixed seed), reference kernel and optimized kernel; prints
 *                                  CBENCH layer=.. macs=.. reference=.. optimized=.. scratch=.. ok=..
 *   kws_cbench test <trials> <seed> random shapes (sizes, strides, padding, channels, zero points,
 *                                  multipliers, ReLU/none, bias/none, batches) plus fixed extreme cases:
 *                                  optimized == reference byte for byte; prints CTEST ... and exits 0 only
 *                                  when all pass.
 * Instruction counts come from board_instructions() (qemu -icount shift=0: SysTick); instructions, not cycles. */
#include <string.h>
#include "kws_board.h"
#include "kws_console.h"
#include "kws_conv_opt.h"

#define BIG __attribute__((section(".bigbss"), aligned(16)))

#define MAXA (24 * 64 * 64)
static int8_t x_in[MAXA] BIG, y_ref[MAXA] BIG, y_opt[MAXA] BIG;
static int8_t filt[64 * 64 * 40] BIG;
static int32_t bias[128], mult[128], shft[128], row_sums[128];
static uint8_t scratch[16384] __attribute__((aligned(16)));

static uint32_t rng = 1;
static uint32_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5; return rng; }
static int32_t rnd_range(int32_t lo, int32_t hi) { return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1)); }

static int32_t same_pad(int32_t in, int32_t k, int32_t stride, int32_t *out)
{
    *out = (in + stride - 1) / stride;
    int32_t total = (*out - 1) * stride + k - in;
    return total > 0 ? total / 2 : 0;
}

/* geometry; real = the requantization scale before the per-channel spread */
static void geometry(kws_conv_params *p, int32_t batches, int32_t ih, int32_t iw, int32_t ic, int32_t oc, int32_t kh,
                     int32_t kw, int32_t sh, int32_t sw, int same, int depthwise)
{
    memset(p, 0, sizeof *p);
    p->batches = batches;
    p->in_h = ih; p->in_w = iw; p->in_c = ic; p->out_c = depthwise ? ic : oc;
    p->k_h = kh; p->k_w = kw; p->stride_h = sh; p->stride_w = sw; p->dil_h = 1; p->dil_w = 1;
    p->depth_multiplier = 1;
    if (same) {
        p->pad_h = same_pad(ih, kh, sh, &p->out_h);
        p->pad_w = same_pad(iw, kw, sw, &p->out_w);
    } else {
        p->out_h = (ih - kh) / sh + 1;
        p->out_w = (iw - kw) / sw + 1;
    }
    p->multiplier = mult;
    p->shift = shft;
}

static void quant(kws_conv_params *p, int32_t zp_in, int32_t zp_out, int relu, double real)
{
    p->act.input_offset = -zp_in;
    p->act.output_offset = zp_out;
    p->act.act_min = relu ? zp_out : -128;
    p->act.act_max = 127;
    for (int32_t c = 0; c < p->out_c; c++) kws_quantize_multiplier(real * (double)rnd_range(60, 140) / 100.0, &mult[c], &shft[c]);
}

static size_t in_bytes(const kws_conv_params *p) { return (size_t)p->batches * p->in_h * p->in_w * p->in_c; }
static size_t out_bytes(const kws_conv_params *p) { return (size_t)p->batches * p->out_h * p->out_w * p->out_c; }
static size_t filt_bytes(const kws_conv_params *p, int dw)
{
    return dw ? (size_t)p->k_h * p->k_w * p->out_c : (size_t)p->out_c * p->k_h * p->k_w * p->in_c;
}

/* runs both kernels; returns 1 when equal, 0 when not, -1 when the optimized kernel does not take the layer */
static int run_both(const kws_conv_params *p, int dw, const int32_t *b, uint64_t *t_ref, uint64_t *t_opt)
{
    if (!kws_conv_opt_supported(p, dw, b) || kws_conv_opt_scratch_bytes(p, dw) > sizeof scratch) return -1;
    memset(y_ref, 0x55, out_bytes(p));
    memset(y_opt, 0xAA, out_bytes(p));
    if (!dw) kws_conv_opt_row_sums(p, filt, row_sums);
    const kws_conv_opt_ctx ctx = {scratch, dw ? NULL : row_sums};
    uint64_t t0 = board_instructions();
    if (dw) kws_depthwise_conv_s8(p, x_in, filt, b, y_ref);
    else kws_conv_s8(p, x_in, filt, b, y_ref);
    uint64_t t1 = board_instructions();
    kws_conv_opt(p, dw, &ctx, x_in, filt, b, y_opt);
    uint64_t t2 = board_instructions();
    if (t_ref) *t_ref = t1 - t0;
    if (t_opt) *t_opt = t2 - t1;
    return memcmp(y_ref, y_opt, out_bytes(p)) == 0;
}

static void fill(int8_t *v, size_t n, int32_t lo, int32_t hi)
{
    for (size_t i = 0; i < n; i++) v[i] = (int8_t)rnd_range(lo, hi);
}

static int bench(void)
{
    static const struct { const char *name; int dw, kh, kw, s, ih, iw, ic, oc; double real; } L[] = {
        {"conv_0", 0, 10, 4, 2, 24, 64, 1, 64, 1.0 / 1500.0},
        {"dw", 1, 3, 3, 1, 12, 32, 64, 64, 1.0 / 300.0},
        {"pw", 0, 1, 1, 1, 12, 32, 64, 64, 1.0 / 2500.0},
    };
    int ok = 1;
    rng = 12345;
    for (int l = 0; l < 3; l++) {
        kws_conv_params p;
        geometry(&p, 1, L[l].ih, L[l].iw, L[l].ic, L[l].oc, L[l].kh, L[l].kw, L[l].s, L[l].s, 1, L[l].dw);
        quant(&p, -20, -128, 1, L[l].real);
        fill(x_in, in_bytes(&p), -128, 127);
        fill(filt, filt_bytes(&p, L[l].dw), -127, 127);
        for (int32_t c = 0; c < p.out_c; c++) bias[c] = rnd_range(-20000, 20000);
        uint64_t tr = 0, to = 0;
        int r = run_both(&p, L[l].dw, bias, &tr, &to);
        int spread = 0;
        for (size_t i = 1; i < out_bytes(&p); i++) if (y_ref[i] != y_ref[0]) spread = 1;
        const uint64_t macs = (uint64_t)p.out_h * p.out_w * p.out_c * p.k_h * p.k_w * (L[l].dw ? 1 : p.in_c);
        board_puts("CBENCH layer="); board_puts(L[l].name);
        kws_put_u64(" macs=", macs); kws_put_u64(" reference=", tr); kws_put_u64(" optimized=", r < 0 ? 0 : to);
        kws_put_u64(" scratch=", kws_conv_opt_scratch_bytes(&p, L[l].dw)); kws_put_u64(" spread=", (uint64_t)spread);
        kws_put_u64(" ok=", (uint64_t)(r == 1)); board_puts("\n");
        ok &= r == 1 && spread;
    }
    return ok;
}

static int selftest(int32_t trials, uint32_t seed)
{
    int32_t run = 0, fails = 0;
    rng = seed ? seed : 1;
    for (int32_t t = 0; t < trials; t++) {
        const int dw = (int)(rnd() & 1);
        kws_conv_params p;
        int32_t kh, kw, s, ic, oc, ih, iw;
        if (dw) {
            kh = kw = 3; s = 1; ic = 4 * rnd_range(1, 5); oc = ic;
            ih = rnd_range(1, 14); iw = rnd_range(1, 40);
        } else {
            kh = rnd_range(1, 5); kw = rnd_range(1, 5); s = rnd_range(1, 2);
            if (rnd() % 3 == 0) kh = kw = s = 1;
            ic = rnd_range(1, 20); oc = rnd_range(1, 20);
            ih = rnd_range(1, 12); iw = rnd_range(1, 16);
        }
        int same = (int)(rnd() & 1);
        if (!same && (ih < kh || iw < kw)) same = 1;
        const int32_t batches = rnd_range(1, 2);
        geometry(&p, batches, ih, iw, ic, oc, kh, kw, s, s, same, dw);
        if (in_bytes(&p) > MAXA || out_bytes(&p) > MAXA) continue;
        const int32_t zp_in = rnd_range(-128, 127), zp_out = rnd_range(-128, 127);
        const double taps = (double)(kh * kw * (dw ? 1 : ic));
        quant(&p, zp_in, zp_out, (int)(rnd() & 1), (double)rnd_range(1, 400) / 100.0 / (64.0 * taps));
        fill(x_in, in_bytes(&p), -128, 127);
        fill(filt, filt_bytes(&p, dw), -128, 127);
        const int has_bias = rnd() % 4 != 0;
        for (int32_t c = 0; c < p.out_c; c++) bias[c] = rnd_range(-(1 << 16), 1 << 16) * (rnd() % 8 == 0 ? 2048 : 1);
        int r = run_both(&p, dw, has_bias ? bias : NULL, NULL, NULL);
        if (r < 0) continue;
        run++;
        if (r == 0) {
            fails++;
            if (fails <= 10) {
                board_puts("CTEST mismatch"); kws_put_u64(" dw=", (uint64_t)dw); kws_put_u64(" kh=", (uint64_t)kh);
                kws_put_u64(" kw=", (uint64_t)kw); kws_put_u64(" s=", (uint64_t)s); kws_put_u64(" ih=", (uint64_t)ih);
                kws_put_u64(" iw=", (uint64_t)iw); kws_put_u64(" ic=", (uint64_t)ic); kws_put_u64(" oc=", (uint64_t)oc);
                kws_put_u64(" same=", (uint64_t)same); kws_put_u64(" batches=", (uint64_t)batches); board_puts("\n");
            }
        }
    }
    /* extremes: every input and weight at one end of its range, the bias at the support limit, the
     * largest shift the depthwise kernel takes, on the DS-CNN shapes */
    for (int32_t e = 0; e < 8; e++) {
        const int dw = e < 4;
        kws_conv_params p;
        if (dw) geometry(&p, 1, 12, 32, 64, 64, 3, 3, 1, 1, 1, 1);
        else geometry(&p, 1, 24, 16, 1, 64, 10, 4, 2, 2, 1, 0);
        const int8_t xv = (e & 1) ? 127 : -128, wv = (e & 2) ? 127 : -128;
        p.act.input_offset = (e & 1) ? 128 : -127;   /* |x + offset| up to 255 */
        p.act.output_offset = (e & 2) ? 127 : -128;
        p.act.act_min = -128; p.act.act_max = 127;
        memset(x_in, (uint8_t)xv, in_bytes(&p));
        memset(filt, (uint8_t)wv, filt_bytes(&p, dw));
        for (int32_t c = 0; c < p.out_c; c++) {
            mult[c] = (1 << 30) + c * 1234567;
            shft[c] = dw ? -(1 + (c % 21)) : -(c % 24);
            bias[c] = (c & 1 ? 1 : -1) * ((1 << 28) - c);
        }
        int r = run_both(&p, dw, bias, NULL, NULL);
        if (r < 0) { fails++; board_puts("CTEST extreme case not taken by the optimized kernel\n"); continue; }
        run++;
        if (r == 0) { fails++; kws_put_u64("CTEST extreme mismatch case=", (uint64_t)e); board_puts("\n"); }
    }
    board_puts("CTEST run="); kws_put_u64("", (uint64_t)run); kws_put_u64(" fail=", (uint64_t)fails); board_puts("\n");
    return fails == 0 && run > 0;
}

int main(int argc, char **argv)
{
    board_init(&argc, &argv);
    if (argc >= 2 && argv[1][0] == 't') {
        int32_t trials = argc >= 3 ? (int32_t)kws_parse_u64(argv[2]) : 200;
        uint32_t seed = argc >= 4 ? (uint32_t)kws_parse_u64(argv[3]) : 1;
        return selftest(trials, seed) ? 0 : 1;
    }
    return bench() ? 0 : 1;
}
