/* kws_kbench: kernel bench and self-test of the optimized FULLY_CONNECTED kernels.
 *
 *   kws_kbench bench [bits...]       FFNN-250K (FC 1536->128, 3x 128->128, 128->12, ReLU between,
 *                                    batch 1, random weights, fixed seed) with the reference kernel,
 *                                    the optimized kernel and the float32 kernel; prints
 *                                    KBENCH isa=.. bits=.. instructions=.. macs=.. weight_bytes=.. layout=.. ok=..
 *                                    first_layer=.. scratch=.. (the largest kws_fc_opt_scratch_bytes of the five)
 *   kws_kbench lstm [hops]           float32 LSTM baseline (kernels/float/kws_lstm_f32.c): the default LSTM
 *                                    (2 x 128 units on 64 bins + Dense 3), random weights, one frame per hop
 *                                    with the state carried; prints LBENCH isa=float hops=.. instructions=..
 *                                    (all hops) first=.. macs=.. weight_bytes=.. ok=.. (first hop against a
 *                                    plain scalar computation of the same LSTM)
 *   kws_kbench test <trials> <seed>  random shapes (odd sizes, tails), bit widths, zero points,
 *                                    multipliers, ReLU/none, bias/none, batches: optimized == reference
 *                                    byte for byte; prints KTEST ... and exits 0 only when all pass.
 * Instruction counts come from board_instructions() (qemu -icount shift=0: SysTick / PMU). */
#include <string.h>
#include "kws_board.h"
#include "kws_console.h"
#include "kws_kernels_opt.h"

#if defined(__arm__) || defined(KBENCH_BAREMETAL)
#define BIG __attribute__((section(".bigbss"), aligned(16)))
#else
#define BIG __attribute__((aligned(16)))
#endif

#define MAXW (1536 * 128)
static int8_t w_int[MAXW] BIG;                 /* integer weights of one layer */
#define POOL (256 * 1024)
static uint8_t w_ref_pool[POOL] BIG;           /* reference layout (0), layers back to back */
static uint8_t w_opt_pool[POOL] BIG;           /* optimized layout, layers back to back */
static uint8_t *w_ref[5], *w_opt[5];
static float w_f32[MAXW + 4 * 128 * 128 + 128 * 12] BIG;
static uint8_t scratch[4 * 2048 + 64] __attribute__((aligned(16)));
static int32_t bias[5][128], row_sums[5][128], mult[5][128], shft[5][128];
static int8_t act_ref[6][1536 * 3], act_opt[6][1536 * 3];
static float act_f[6][1536], bias_f[5][128];

static uint32_t rng = 1;
static uint32_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5; return rng; }
static int32_t rnd_range(int32_t lo, int32_t hi) { return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1)); }

static void random_weights(int32_t bits, int32_t n, int8_t *w)
{
    int32_t m = bits == 1 ? 1 : (1 << (bits - 1)) - 1;
    for (int32_t i = 0; i < n; i++) {
        if (bits == 1) w[i] = (rnd() & 1) ? 1 : -1;
        else w[i] = (int8_t)rnd_range(bits == 8 ? -128 : -m - 1, m); /* full two's complement range */
    }
}

static void reference(const kws_fc_params *p, int32_t batches, const int8_t *x, const uint8_t *w, const int32_t *b, int8_t *y)
{
    if (p->bits == 8) kws_fully_connected_s8(p, batches, x, (const int8_t *)w, b, y);
    else kws_fully_connected_sub8(p, batches, x, w, b, y);
}

static void set_params(kws_fc_params *p, int32_t bits, int32_t layout, int32_t in_n, int32_t out_n, int32_t zp_in,
                       int32_t zp_out, int relu, const int32_t *mu, const int32_t *sh)
{
    memset(p, 0, sizeof *p);
    p->act.input_offset = -zp_in;
    p->act.output_offset = zp_out;
    p->act.act_min = relu ? (zp_out > -128 ? zp_out : -128) : -128;
    p->act.act_max = 127;
    p->in_features = in_n;
    p->out_features = out_n;
    p->multiplier = mu;
    p->shift = sh;
    p->bits = bits;
    p->layout = layout;
    p->row_bytes = kws_fc_opt_row_bytes(layout, bits, in_n);
}

/* ---------------- FFNN-250K bench ---------------- */

static const int32_t dims[6] = {1536, 128, 128, 128, 128, 12};

static int bench(int32_t bits)
{
    const int32_t lay = kws_fc_opt_preferred_layout(bits);
    kws_fc_params pr[5], po[5];
    kws_fc_opt_ctx ctx[5];
    uint64_t macs = 0, bytes_ref = 0, bytes_opt = 0;
    size_t fo = 0;
    rng = 0x2545F491u + (uint32_t)bits;
    size_t ro = 0, oo = 0, scratch_max = 0;
    for (int l = 0; l < 5; l++) {
        w_ref[l] = w_ref_pool + ro;
        w_opt[l] = w_opt_pool + oo;
        const int32_t in_n = dims[l], out_n = dims[l + 1];
        const int32_t zp_in = l == 0 ? rnd_range(-20, 20) : -128, zp_out = l == 4 ? rnd_range(-10, 10) : -128;
        const int relu = l < 4;
        random_weights(bits, in_n * out_n, w_int);
        /* scale: keep the outputs spread over int8 */
        int32_t wmax = bits == 1 ? 1 : (1 << (bits - 1));
        double real = 60.0 / (double)(wmax * 60) / (double)(in_n > 256 ? 40 : 11);
        for (int32_t o = 0; o < out_n; o++) {
            kws_quantize_multiplier(real, &mult[l][o], &shft[l][o]);
            bias[l][o] = rnd_range(-2000, 2000) * wmax;
            bias_f[l][o] = (float)bias[l][o];
        }
        set_params(&pr[l], bits, 0, in_n, out_n, zp_in, zp_out, relu, mult[l], shft[l]);
        set_params(&po[l], bits, lay, in_n, out_n, zp_in, zp_out, relu, mult[l], shft[l]);
        kws_fc_opt_pack(0, bits, out_n, in_n, w_int, w_ref[l]);
        if (lay >= 0) {
            kws_fc_opt_pack(lay, bits, out_n, in_n, w_int, w_opt[l]);
            kws_fc_opt_row_sums(&po[l], w_opt[l], row_sums[l]);
            if (kws_fc_opt_scratch_bytes(&po[l]) > scratch_max) scratch_max = kws_fc_opt_scratch_bytes(&po[l]);
            ctx[l].scratch = scratch;
            ctx[l].row_sums = row_sums[l];
            const int64_t pb = kws_fc_opt_packed_bytes(lay, bits, out_n, in_n);
            bytes_opt += (uint64_t)pb;
            oo += ((size_t)pb + 15u) & ~(size_t)15u;
        }
        for (int32_t i = 0; i < in_n * out_n; i++) w_f32[fo + (size_t)i] = (float)w_int[i];
        fo += (size_t)in_n * out_n;
        macs += (uint64_t)in_n * out_n;
        bytes_ref += (uint64_t)out_n * (uint64_t)pr[l].row_bytes;
        ro += ((size_t)out_n * (size_t)pr[l].row_bytes + 15u) & ~(size_t)15u;
    }
    for (int32_t i = 0; i < dims[0]; i++) {
        act_ref[0][i] = act_opt[0][i] = (int8_t)rnd_range(-128, 127);
        act_f[0][i] = (float)act_ref[0][i];
    }
    uint64_t t0 = board_instructions();
    for (int l = 0; l < 5; l++) reference(&pr[l], 1, act_ref[l], w_ref[l], bias[l], act_ref[l + 1]);
    uint64_t t1 = board_instructions();
    int ok = 1;
    uint64_t t2 = 0, t3 = 0, first_layer = 0;
    if (lay >= 0 && kws_fc_opt_supported(bits, lay)) {
        t2 = board_instructions();
        for (int l = 0; l < 5; l++) kws_fully_connected_opt(&po[l], &ctx[l], 1, act_opt[l], w_opt[l], bias[l], act_opt[l + 1]);
        t3 = board_instructions();
        uint64_t l0 = board_instructions();
        kws_fully_connected_opt(&po[0], &ctx[0], 1, act_opt[0], w_opt[0], bias[0], act_opt[1]);
        first_layer = board_instructions() - l0;
        for (int l = 1; l < 6; l++)
            if (memcmp(act_ref[l], act_opt[l], (size_t)dims[l]) != 0) ok = 0;
    }
    /* float32: the same layers on float activations */
    uint64_t t4 = board_instructions();
    fo = 0;
    for (int l = 0; l < 5; l++) {
        kws_fully_connected_f32(dims[l], dims[l + 1], act_f[l], w_f32 + fo, bias_f[l], l < 4, act_f[l + 1]);
        fo += (size_t)dims[l] * dims[l + 1];
    }
    uint64_t t5 = board_instructions();
    /* the float kernel must compute the layer: first layer against a plain double loop */
    int float_ok = 1;
    for (int32_t o = 0; o < dims[1]; o++) {
        double ref = bias_f[0][o];
        for (int32_t i = 0; i < dims[0]; i++) ref += (double)w_f32[(size_t)o * dims[0] + i] * (double)act_f[0][i];
        if (ref < 0.0) ref = 0.0;
        double d = ref - (double)act_f[1][o];
        if (d < 0.0) d = -d;
        if (d > 1e-4 * (ref < 0.0 ? -ref : ref) + 1e-3) float_ok = 0;
    }
    int spread = 0;
    for (int32_t o = 0; o < 12; o++) if (act_ref[5][o] != act_ref[5][0]) spread = 1;
    board_puts("KBENCH isa=reference");
    kws_put_u64(" bits=", (uint64_t)bits); kws_put_u64(" instructions=", t1 - t0); kws_put_u64(" macs=", macs);
    kws_put_u64(" weight_bytes=", bytes_ref); kws_put_u64(" spread=", (uint64_t)spread); board_puts("\n");
    if (t3) {
        board_puts("KBENCH isa="); board_puts(kws_fc_opt_isa);
        kws_put_u64(" bits=", (uint64_t)bits); kws_put_u64(" instructions=", t3 - t2); kws_put_u64(" macs=", macs);
        kws_put_u64(" weight_bytes=", bytes_opt); kws_put_u64(" layout=", (uint64_t)lay); kws_put_u64(" ok=", (uint64_t)ok);
        kws_put_u64(" first_layer=", first_layer); kws_put_u64(" scratch=", scratch_max); board_puts("\n");
    }
    if (bits == 8) {
        board_puts("KBENCH isa=float bits=32");
        kws_put_u64(" instructions=", t5 - t4); kws_put_u64(" macs=", macs); kws_put_u64(" weight_bytes=", macs * 4);
        kws_put_u64(" ok=", (uint64_t)float_ok); board_puts("\n");
    }
    return ok && float_ok;
}

/* ---------------- float32 LSTM baseline ---------------- */

#define LB 64
#define LU 128
static float lstm_h[2][LU], lstm_c[2][LU], lstm_x[LB], lstm_y[3], lstm_scr[8 * LU];
static float chk_h[LU], chk_c[LU], chk_g[4 * LU];

static float frand(float scale) { return scale * ((float)(int32_t)(rnd() % 2001u) - 1000.0f) / 1000.0f; }

/* one layer's hop written plainly (no FC kernel): what kws_lstm_f32 must compute */
static void lstm_plain(int32_t n_in, const float *x, const float *w, const float *r, const float *b, float *h, float *c)
{
    for (int32_t k = 0; k < 4 * LU; k++) {
        float acc = b[k];
        for (int32_t i = 0; i < n_in; i++) acc += w[(size_t)k * (size_t)n_in + (size_t)i] * x[i];
        for (int32_t i = 0; i < LU; i++) acc += r[(size_t)k * LU + (size_t)i] * h[i];
        chk_g[k] = acc;
    }
    for (int32_t j = 0; j < LU; j++) {
        const float i = 1.0f / (1.0f + kws_lstm_f32_exp(-chk_g[j])), f = 1.0f / (1.0f + kws_lstm_f32_exp(-chk_g[LU + j]));
        const float g = 1.0f - 2.0f / (1.0f + kws_lstm_f32_exp(2.0f * chk_g[2 * LU + j]));
        const float o = 1.0f / (1.0f + kws_lstm_f32_exp(-chk_g[3 * LU + j]));
        c[j] = f * c[j] + i * g;
        h[j] = o * (1.0f - 2.0f / (1.0f + kws_lstm_f32_exp(2.0f * c[j])));
    }
}

static int lstm_bench(int32_t hops)
{
    /* weights in w_f32: layer 0 W [512][64], R [512][128]; layer 1 W, R [512][128]; Dense [3][128]; biases */
    float *w0 = w_f32, *r0 = w0 + 4 * LU * LB, *w1 = r0 + 4 * LU * LU, *r1 = w1 + 4 * LU * LU, *wd = r1 + 4 * LU * LU;
    float *b0 = wd + 3 * LU, *b1 = b0 + 4 * LU, *bd = b1 + 4 * LU;
    const size_t nw = (size_t)(bd + 3 - w_f32);
    if (nw > sizeof w_f32 / sizeof w_f32[0]) return 0;
    rng = 7;
    for (size_t i = 0; i < nw; i++) w_f32[i] = frand(0.15f);
    memset(lstm_h, 0, sizeof lstm_h);
    memset(lstm_c, 0, sizeof lstm_c);
    memset(chk_h, 0, sizeof chk_h);
    memset(chk_c, 0, sizeof chk_c);
    for (int32_t i = 0; i < LB; i++) lstm_x[i] = frand(2.0f);
    /* the check: layer 0's first hop, kernel against the plain loop */
    lstm_plain(LB, lstm_x, w0, r0, b0, chk_h, chk_c);
    uint64_t t0 = board_instructions(), first = 0;
    for (int32_t t = 0; t < hops; t++) {
        kws_lstm_f32(LB, LU, lstm_x, w0, r0, b0, lstm_h[0], lstm_c[0], lstm_scr);
        kws_lstm_f32(LU, LU, lstm_h[0], w1, r1, b1, lstm_h[1], lstm_c[1], lstm_scr);
        kws_fully_connected_f32(LU, 3, lstm_h[1], wd, bd, 0, lstm_y);
        if (t == 0) first = board_instructions() - t0;
    }
    uint64_t t1 = board_instructions();
    int ok = 1;
    /* the first hop's layer-0 state was overwritten by later hops: recompute it once more with the kernel */
    float h0[LU], c0[LU];
    memset(h0, 0, sizeof h0);
    memset(c0, 0, sizeof c0);
    kws_lstm_f32(LB, LU, lstm_x, w0, r0, b0, h0, c0, lstm_scr);
    for (int32_t j = 0; j < LU; j++) {
        float d = h0[j] - chk_h[j], e = c0[j] - chk_c[j];
        if (d < 0.0f) d = -d;
        if (e < 0.0f) e = -e;
        if (!(d <= 1e-4f && e <= 1e-4f)) ok = 0;   /* also catches NaN */
    }
    int spread = 0;
    for (int32_t j = 1; j < LU; j++) if (chk_h[j] != chk_h[0]) spread = 1;
    const uint64_t macs = 4u * LU * (LB + LU) + 4u * LU * (LU + LU) + 3u * LU;
    board_puts("LBENCH isa=float");
    kws_put_u64(" hops=", (uint64_t)hops); kws_put_u64(" instructions=", t1 - t0); kws_put_u64(" first=", first);
    kws_put_u64(" macs=", macs); kws_put_u64(" weight_bytes=", (uint64_t)nw * 4u);
    kws_put_u64(" ok=", (uint64_t)(ok && spread)); board_puts("\n");
    return ok && spread;
}

/* ---------------- random-shape self-test ---------------- */

static int selftest(int32_t trials, uint32_t seed)
{
    static const int32_t bit_list[] = {1, 2, 3, 4, 5, 6, 7, 8};
    int32_t fails = 0, run = 0;
    rng = seed ? seed : 1;
    for (int32_t t = 0; t < trials; t++) {
        int32_t bits = bit_list[rnd() % 8];
        int32_t lay = kws_fc_opt_preferred_layout(bits);
        if (lay < 0 || !kws_fc_opt_supported(bits, lay)) continue;
        /* every other layout this ISA runs for k-bit weights gets its share of the trials */
        static const int32_t alts[] = {KWS_LAYOUT_R4_WORDS, KWS_LAYOUT_R4_NIB32, KWS_LAYOUT_ROWS_PER_BYTE,
                                       KWS_LAYOUT_LANES16};
        for (int32_t a = 0; a < 4; a++) {
            int32_t alt = alts[a];
            if (alt != lay && kws_fc_opt_supported(bits, alt) && rnd() % 2) { lay = alt; break; }
        }
        int32_t in_n = (rnd() % 4 == 0) ? rnd_range(1, 1536) : rnd_range(1, 200);
        if (rnd() % 3 == 0) in_n = (in_n + 15) & ~15;   /* whole blocks of 16: the kernels' no-tail paths */
        int32_t out_n = rnd_range(1, 23);
        if ((int64_t)in_n * out_n > POOL / 2) out_n = (POOL / 2) / in_n;
        int32_t batches = rnd_range(1, 3);
        if (in_n * batches > 1536 * 3) batches = 1;
        int32_t zp_in = rnd_range(-128, 127), zp_out = rnd_range(-128, 127);
        int relu = (int)(rnd() & 1), has_bias = (rnd() % 4) != 0;
        int32_t wmax = bits == 1 ? 1 : (1 << (bits - 1));
        double real = 1.0 / (double)(wmax * 64) / (double)(in_n < 16 ? 4 : in_n / 4);
        real *= (double)rnd_range(1, 200) / 20.0;
        if (rnd() % 8 == 0) real *= (double)(1 << rnd_range(6, 14)); /* multipliers > 1: left shifts */
        for (int32_t o = 0; o < out_n; o++) {
            kws_quantize_multiplier(real * (double)rnd_range(50, 150) / 100.0, &mult[0][o], &shft[0][o]);
            bias[0][o] = rnd_range(-(1 << 16), 1 << 16) * wmax;
        }
        kws_fc_params pr, po;
        set_params(&pr, bits, 0, in_n, out_n, zp_in, zp_out, relu, mult[0], shft[0]);
        set_params(&po, bits, lay, in_n, out_n, zp_in, zp_out, relu, mult[0], shft[0]);
        random_weights(bits, in_n * out_n, w_int);
        w_ref[0] = w_ref_pool;
        w_opt[0] = w_opt_pool;
        /* the DSP layout-8 kernels read word-aligned weights with LDRD, other addresses with LDR: test both */
        if (lay == KWS_LAYOUT_LANES16 && rnd() % 3 == 0) w_opt[0] += rnd_range(1, 3);
        kws_fc_opt_pack(0, bits, out_n, in_n, w_int, w_ref[0]);
        kws_fc_opt_pack(lay, bits, out_n, in_n, w_int, w_opt[0]);
        kws_fc_opt_row_sums(&po, w_opt[0], row_sums[0]);
        /* the C reader must give back the integer weights */
        for (int32_t k = 0; k < 8; k++) {
            int32_t o = rnd_range(0, out_n - 1), i = rnd_range(0, in_n - 1);
            if (kws_fc_opt_weight(&po, w_opt[0], o, i) != w_int[o * in_n + i]) { fails++; board_puts("KTEST reader mismatch\n"); break; }
        }
        for (int32_t i = 0; i < in_n * batches; i++) act_ref[0][i] = (int8_t)rnd_range(-128, 127);
        memset(act_ref[1], 0x55, (size_t)out_n * batches);
        memset(act_opt[1], 0xAA, (size_t)out_n * batches);
        kws_fc_opt_ctx ctx = {scratch, row_sums[0]};
        if (kws_fc_opt_scratch_bytes(&po) > sizeof scratch) continue;
        reference(&pr, batches, act_ref[0], w_ref[0], has_bias ? bias[0] : NULL, act_ref[1]);
        kws_fully_connected_opt(&po, &ctx, batches, act_ref[0], w_opt[0], has_bias ? bias[0] : NULL, act_opt[1]);
        run++;
        if (memcmp(act_ref[1], act_opt[1], (size_t)out_n * batches) != 0) {
            fails++;
            if (fails <= 10) {
                board_puts("KTEST mismatch");
                kws_put_u64(" bits=", (uint64_t)bits); kws_put_u64(" layout=", (uint64_t)lay); kws_put_u64(" in=", (uint64_t)in_n);
                kws_put_u64(" out=", (uint64_t)out_n); kws_put_u64(" batches=", (uint64_t)batches); kws_put_i64(" zp_in=", zp_in);
                kws_put_i64(" zp_out=", zp_out); kws_put_u64(" relu=", (uint64_t)relu); kws_put_u64(" bias=", (uint64_t)has_bias);
                for (int32_t o = 0; o < out_n * batches; o++)
                    if (act_ref[1][o] != act_opt[1][o]) { kws_put_u64(" first=", (uint64_t)o); kws_put_i64(" ref=", act_ref[1][o]); kws_put_i64(" opt=", act_opt[1][o]); break; }
                board_puts("\n");
            }
        }
    }
    /* extreme operands, fixed cases after the random ones (the random sequence above stays as it was):
     * every layout this ISA runs, 1536 inputs (the largest layer), activations and weights all at one end
     * of their range, so accumulators that hold several products per lane meet their worst case */
    for (int32_t bits = 1; bits <= 8; bits++) {
        static const int32_t lays[] = {KWS_LAYOUT_ROW_LSB, KWS_LAYOUT_R4_WORDS, KWS_LAYOUT_R4_NIB32,
                                       KWS_LAYOUT_ROWS_PER_BYTE, KWS_LAYOUT_LANES16, KWS_LAYOUT_ROWS24};
        const int32_t wmin = bits == 1 ? -1 : -(1 << (bits - 1)), wmaxv = bits == 1 ? 1 : (1 << (bits - 1)) - 1;
        for (int32_t a = 0; a < 6; a++) {
            const int32_t lay = lays[a];
            if ((lay == KWS_LAYOUT_ROW_LSB) != (bits == 8) || !kws_fc_opt_supported(bits, lay)) continue;
            for (int32_t e = 0; e < 4; e++) {
                const int32_t in_n = 1536 - 5 * (e & 1), out_n = 7;
                const int8_t xv = (e & 2) ? -128 : 127;
                for (int32_t i = 0; i < in_n * out_n; i++) w_int[i] = (int8_t)((e & 1) ? wmaxv : wmin);
                /* the bias cancels the exact sum and the scale is 1/256: an error of 2^8 or more shows */
                const int32_t wv = (e & 1) ? wmaxv : wmin;
                for (int32_t o = 0; o < out_n; o++) {
                    mult[0][o] = 1 << 30; shft[0][o] = -7; bias[0][o] = -in_n * xv * wv + 700 * (o - 3);
                }
                kws_fc_params pr, po;
                set_params(&pr, bits, 0, in_n, out_n, 0, 0, 0, mult[0], shft[0]);
                set_params(&po, bits, lay, in_n, out_n, 0, 0, 0, mult[0], shft[0]);
                kws_fc_opt_pack(0, bits, out_n, in_n, w_int, w_ref_pool);
                kws_fc_opt_pack(lay, bits, out_n, in_n, w_int, w_opt_pool);
                kws_fc_opt_row_sums(&po, w_opt_pool, row_sums[0]);
                memset(act_ref[0], (uint8_t)xv, (size_t)in_n);
                memset(act_ref[1], 0x55, (size_t)out_n);
                memset(act_opt[1], 0xAA, (size_t)out_n);
                kws_fc_opt_ctx ctx = {scratch, row_sums[0]};
                if (kws_fc_opt_scratch_bytes(&po) > sizeof scratch) continue;
                reference(&pr, 1, act_ref[0], w_ref_pool, bias[0], act_ref[1]);
                kws_fully_connected_opt(&po, &ctx, 1, act_ref[0], w_opt_pool, bias[0], act_opt[1]);
                run++;
                if (memcmp(act_ref[1], act_opt[1], (size_t)out_n) != 0) {
                    fails++;
                    board_puts("KTEST extreme mismatch");
                    kws_put_u64(" bits=", (uint64_t)bits); kws_put_u64(" layout=", (uint64_t)lay);
                    kws_put_u64(" case=", (uint64_t)e); kws_put_i64(" ref=", act_ref[1][0]); kws_put_i64(" opt=", act_opt[1][0]);
                    board_puts("\n");
                }
            }
        }
    }
    /* the fast requantization against the reference function, incl. extreme accumulators */
    for (int32_t t = 0; t < 20000; t++) {
        int32_t x = (int32_t)rnd(), m = (int32_t)(rnd() >> 1) | (t & 1 ? 0x40000000 : 0), sh = rnd_range(-31, 8);
        if (t % 7 == 0) x = t % 3 ? INT32_MIN : INT32_MAX;
        if (t % 11 == 0) x >>= rnd_range(0, 30);
        if (t % 13 == 0) m = 0;
        if (kws_fc_opt_mbqm(x, m, sh) != kws_multiply_by_quantized_multiplier(x, m, sh)) {
            fails++;
            if (fails <= 10) { kws_put_i64("KTEST mbqm mismatch x=", x); kws_put_i64(" m=", m); kws_put_i64(" shift=", sh); board_puts("\n"); }
        }
    }
    board_puts("KTEST isa="); board_puts(kws_fc_opt_isa);
    kws_put_u64(" run=", (uint64_t)run); kws_put_u64(" fail=", (uint64_t)fails); board_puts("\n");
    return fails == 0 && run > 0;
}

int main(int argc, char **argv)
{
    board_init(&argc, &argv);
    if (argc >= 2 && argv[1][0] == 't') { /* "test" */
        int32_t trials = argc >= 3 ? (int32_t)kws_parse_u64(argv[2]) : 200;
        uint32_t seed = argc >= 4 ? (uint32_t)kws_parse_u64(argv[3]) : 1;
        return selftest(trials, seed) ? 0 : 1;
    }
    if (argc >= 2 && argv[1][0] == 'l') { /* "lstm" */
        int32_t hops = argc >= 3 ? (int32_t)kws_parse_u64(argv[2]) : 4;
        return lstm_bench(hops > 0 ? hops : 4) ? 0 : 1;
    }
    int ok = 1;
    if (argc >= 3) {
        for (int a = 2; a < argc; a++) ok &= bench((int32_t)kws_parse_u64(argv[a]));
    } else {
        static const int32_t all[] = {8, 5, 4, 3, 2, 1};
        for (int a = 0; a < 6; a++) ok &= bench(all[a]);
    }
    return ok ? 0 : 1;
}
