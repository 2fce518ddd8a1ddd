/* kws_a4bench: SUB8_FC_A4 (4-bit activations) kernels on every emulated board: the build's A4 kernel
 * (kws_fully_connected_a4_opt: Cortex-M DSP on layout 7, Helium and NEON on layout 6, the layout from
 * kws_isa_a4_layout of kws_layout_table.h) against the reference and our w4a8 / w8a8 FC kernels.
 *
 *   kws_a4bench test <trials> <seed>  random shapes, 2..4-bit weights (those with an A4 layout on this
 *                                     build), 2..4-bit activations, multipliers, shifts, ReLU/none,
 *                                     bias/none, 4/8-bit outputs, 1..3 batches:
 *                                     kws_fully_connected_a4_opt == kws_fully_connected_a4 byte for byte;
 *                                     prints A4TEST run=.. fail=.. and exits 0 only when all pass.
 *   kws_a4bench bench                 the FFNN-250K layer shapes (1536->128, 3x 128->128, 128->12) at
 *                                     4-bit weights with 4-bit inputs to every layer: the A4 kernel
 *                                     (kernel=a4_opt), the w4a4 reference (layout 0), our w4a8 FC kernel
 *                                     (kws_fully_connected_opt, its preferred 4-bit layout, int8 inputs)
 *                                     and our w8a8 FC kernel (int8 weights) on the same shapes;
 *                                     prints A4BENCH kernel=.. instructions=.. macs=.. weight_bytes=.. ok=..
 * Instructions from board_instructions() (qemu -icount shift=0: SysTick / PMU), not cycles. */
#include <string.h>
#include "kws_board.h"
#include "kws_console.h"
#include "kws_fc_a4.h"
#include "kws_kernels_opt.h"

#define BIG __attribute__((section(".bigbss"), aligned(16)))
#define MAXW (1536 * 128)
static int8_t w_int[MAXW] BIG;
#define POOL (128 * 1024)
static uint8_t w_ref_pool[POOL] BIG, w_a4_pool[POOL] BIG, w_a8_pool[POOL] BIG;
static int8_t w_s8_pool[2 * POOL] BIG;   /* w8a8: int8 weights, layers back to back */

/* this build's A4 layout for k-bit weights (0: none, the reference only) and its packer */
static int32_t a4_layout(int32_t bits) { return kws_isa_a4_layout_for(kws_fc_a4_opt_isa, bits); }

static void a4_pack(int32_t layout, int32_t bits, int32_t out_n, int32_t in_n, const int8_t *w, uint8_t *packed)
{
    if (layout == KWS_LAYOUT_A4_PAIRS) kws_fc_a4_pack_pairs(out_n, in_n, w, packed);
    else kws_fc_opt_pack(layout, bits, out_n, in_n, w, packed);
}
static uint8_t scratch[8 * 1024] __attribute__((aligned(16)));
static int32_t bias[5][128], mult[5][128], shft[5][128], row_sums[5][128];
static int8_t act_ref[6][1536 * 3], act_a4[6][1536 * 3], act_a8[6][1536 * 3];

static uint32_t rng = 1;
static uint32_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5; return rng; }
static int32_t rnd_range(int32_t lo, int32_t hi) { return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1)); }

static void set_params(kws_fc_a4_params *p, int32_t bits, int32_t layout, int32_t in_n, int32_t out_n,
                       int32_t ib, int32_t ob, int32_t zp_out, int relu, const int32_t *mu, const int32_t *sh)
{
    memset(p, 0, sizeof *p);
    p->fc.act.input_offset = 0;
    p->fc.act.output_offset = zp_out;
    p->fc.act.act_min = relu ? (zp_out > -128 ? zp_out : -128) : -128;
    p->fc.act.act_max = ob < 8 ? p->fc.act.act_min + (1 << ob) - 1 : 127;
    p->fc.in_features = in_n;
    p->fc.out_features = out_n;
    p->fc.multiplier = mu;
    p->fc.shift = sh;
    p->fc.bits = bits;
    p->fc.layout = layout;
    p->fc.row_bytes = layout == 0 ? (in_n * bits + 7) / 8 : layout == KWS_LAYOUT_A4_PAIRS ? 2 * ((in_n + 3) / 4)
                                                                : (int32_t)kws_layout_row_bytes(layout, bits, in_n);
    p->input_bits = ib;
    p->output_bits = ob;
}

static void random_weights(int32_t bits, int32_t n, int8_t *w)
{
    const int32_t m = (1 << (bits - 1)) - 1;
    for (int32_t i = 0; i < n; i++) w[i] = (int8_t)rnd_range(-m, m);
}

static int selftest(int32_t trials, uint32_t seed)
{
    static kws_fc_a4_params pr, pd;
    int32_t fails = 0;
    rng = seed ? seed : 1;
    for (int32_t t = 0; t < trials; t++) {
        int32_t bits = rnd_range(2, 4);
        while (a4_layout(bits) == 0) bits = bits == 2 ? 4 : bits - 1;   /* a width this build's A4 kernel reads */
        const int32_t lay = a4_layout(bits), ib = rnd_range(2, 4), ob = (rnd() & 1) ? 4 : 8;
        const int32_t in_n = rnd_range(1, (t % 5 == 0) ? 1536 : 200), out_n = rnd_range(1, 24);
        const int32_t batches = rnd_range(1, 3), relu = ob < 8 || (rnd() & 1);
        const int32_t zp_out = ob < 8 ? 0 : rnd_range(-20, 20);
        for (int32_t o = 0; o < out_n; o++) {
            mult[0][o] = (int32_t)(0x40000000u + (rnd() & 0x3FFFFFFFu));
            shft[0][o] = rnd_range(in_n > 256 ? -16 : -12, -5);
            bias[0][o] = rnd_range(-3000, 3000);
            if (t % 11 == 6) {   /* requantization edges: every shift -31..2, multipliers 0 / 2^30 / 2^31 - 1, any bias */
                static const int32_t ms[3] = {0, 0x40000000, 0x7FFFFFFF};
                shft[0][o] = rnd_range(-31, 2);
                if (o % 4 != 3) mult[0][o] = ms[o % 4];
                bias[0][o] = (int32_t)rnd();
            }
        }
        random_weights(bits, in_n * out_n, w_int);
        if (t % 7 == 3) for (int32_t i = 0; i < in_n * out_n; i++) w_int[i] = (int8_t)((rnd() & 1) ? 7 : -7) / (bits == 4 ? 1 : (bits == 3 ? 2 : 7));
        set_params(&pr, bits, 0, in_n, out_n, ib, ob, zp_out, relu, mult[0], shft[0]);
        set_params(&pd, bits, lay, in_n, out_n, ib, ob, zp_out, relu, mult[0], shft[0]);
        kws_fc_opt_pack(0, bits, out_n, in_n, w_int, w_ref_pool);
        a4_pack(lay, bits, out_n, in_n, w_int, w_a4_pool);
        for (int32_t i = 0; i < in_n * batches; i++)
            act_ref[0][i] = (int8_t)((t % 7 == 3) ? (1 << ib) - 1 : rnd_range(0, (1 << ib) - 1));
        const int32_t *b = (rnd() & 7) ? bias[0] : 0;
        kws_fully_connected_a4(&pr, batches, act_ref[0], w_ref_pool, b, act_ref[1]);
        if (!kws_fc_a4_opt_supported(&pd) || kws_fc_a4_opt_scratch_bytes(&pd) > sizeof scratch) { fails++; continue; }
        kws_fully_connected_a4_opt(&pd, scratch, batches, act_ref[0], w_a4_pool, b, act_a4[1]);
        if (memcmp(act_ref[1], act_a4[1], (size_t)(out_n * batches)) != 0) {
            fails++;
            board_puts("A4TEST mismatch");
            kws_put_u64(" trial=", (uint64_t)t); kws_put_u64(" in=", (uint64_t)in_n); kws_put_u64(" out=", (uint64_t)out_n);
            kws_put_u64(" bits=", (uint64_t)bits); board_puts("\n");
        }
    }
    kws_put_u64("A4TEST run=", (uint64_t)trials);
    kws_put_u64(" fail=", (uint64_t)fails);
    board_puts("\n");
    return fails == 0;
}

static const int32_t dims[6] = {1536, 128, 128, 128, 128, 12};

static int bench(void)
{
    static kws_fc_a4_params pr[5], pd[5];
    static kws_fc_params p8[5], q8[5];
    static kws_fc_opt_ctx ctx[5], ctx8[5];
    static int32_t row_sums8[5][128];
    size_t ro = 0, ao = 0, eo = 0, so = 0;
    const uint8_t *wr[5], *wa[5], *we[5];
    const int8_t *ws[5];
    const int32_t lay = a4_layout(4);
    uint64_t macs = 0, bytes_a4 = 0, bytes_a8 = 0, bytes_ref = 0, bytes_s8 = 0;
    rng = 0x2545F491u + 4u;
    for (int l = 0; l < 5; l++) {
        const int32_t in_n = dims[l], out_n = dims[l + 1], last = l == 4;
        random_weights(4, in_n * out_n, w_int);
        double real = 1.0 / (8.0 * (in_n > 256 ? 40 : 11));
        for (int32_t o = 0; o < out_n; o++) {
            kws_quantize_multiplier(real, &mult[l][o], &shft[l][o]);
            bias[l][o] = rnd_range(-2000, 2000);
        }
        set_params(&pr[l], 4, 0, in_n, out_n, 4, last ? 8 : 4, 0, !last, mult[l], shft[l]);
        set_params(&pd[l], 4, lay, in_n, out_n, 4, last ? 8 : 4, 0, !last, mult[l], shft[l]);
        /* w4a8 on the same shapes: int8 activations with zero point -128, ReLU, full int8 outputs */
        memset(&p8[l], 0, sizeof p8[l]);
        p8[l].act.input_offset = 128;
        p8[l].act.output_offset = -128;
        p8[l].act.act_min = -128;
        p8[l].act.act_max = 127;
        p8[l].in_features = in_n;
        p8[l].out_features = out_n;
        p8[l].multiplier = mult[l];
        p8[l].shift = shft[l];
        p8[l].bits = 4;
        p8[l].layout = kws_fc_opt_preferred_layout(4);
        p8[l].row_bytes = kws_fc_opt_row_bytes(p8[l].layout, 4, in_n);
        q8[l] = p8[l];   /* w8a8: the same integers as int8 weights, row-major (layout 0, k = 8) */
        q8[l].bits = 8;
        q8[l].layout = 0;
        q8[l].row_bytes = in_n;
        ws[l] = w_s8_pool + so;
        memcpy(w_s8_pool + so, w_int, (size_t)(in_n * out_n));
        kws_fc_opt_row_sums(&q8[l], (const uint8_t *)ws[l], row_sums8[l]);
        ctx8[l].scratch = scratch;
        ctx8[l].row_sums = row_sums8[l];
        bytes_s8 += (uint64_t)(in_n * out_n);
        so += ((size_t)(in_n * out_n) + 15u) & ~(size_t)15u;
        wr[l] = w_ref_pool + ro;
        wa[l] = w_a4_pool + ao;
        we[l] = w_a8_pool + eo;
        kws_fc_opt_pack(0, 4, out_n, in_n, w_int, w_ref_pool + ro);
        a4_pack(lay, 4, out_n, in_n, w_int, w_a4_pool + ao);
        kws_fc_opt_pack(p8[l].layout, 4, out_n, in_n, w_int, w_a8_pool + eo);
        kws_fc_opt_row_sums(&p8[l], w_a8_pool + eo, row_sums[l]);
        ctx[l].scratch = scratch;
        ctx[l].row_sums = row_sums[l];
        const size_t b7 = lay == KWS_LAYOUT_A4_PAIRS ? (size_t)kws_fc_a4_packed_bytes(out_n, in_n)
                                                     : (size_t)kws_layout_packed_bytes(lay, 4, out_n, in_n);
        const size_t b2 = (size_t)kws_fc_opt_packed_bytes(p8[l].layout, 4, out_n, in_n);
        const size_t b0 = (size_t)out_n * (size_t)pr[l].fc.row_bytes;
        bytes_a4 += b7; bytes_a8 += b2; bytes_ref += b0;
        ro += (b0 + 15u) & ~(size_t)15u;
        ao += (b7 + 15u) & ~(size_t)15u;
        eo += (b2 + 15u) & ~(size_t)15u;
        macs += (uint64_t)in_n * (uint64_t)out_n;
    }
    for (int32_t i = 0; i < dims[0]; i++) {
        act_ref[0][i] = act_a4[0][i] = (int8_t)rnd_range(0, 15);
        act_a8[0][i] = (int8_t)rnd_range(-128, 127);
    }
    /* the first layer's input comes from a 4-bit layer too (a hidden layer of a wider model) */
    uint64_t t0 = board_instructions();
    for (int l = 0; l < 5; l++) kws_fully_connected_a4(&pr[l], 1, act_ref[l], wr[l], bias[l], act_ref[l + 1]);
    uint64_t t1 = board_instructions();
    for (int l = 0; l < 5; l++) kws_fully_connected_a4_opt(&pd[l], scratch, 1, act_a4[l], wa[l], bias[l], act_a4[l + 1]);
    uint64_t t2 = board_instructions();
    for (int l = 0; l < 5; l++) kws_fully_connected_opt(&p8[l], &ctx[l], 1, act_a8[l], we[l], bias[l], act_a8[l + 1]);
    uint64_t t3 = board_instructions();
    kws_fully_connected_a4_opt(&pd[0], scratch, 1, act_a4[0], wa[0], bias[0], act_a4[1]);
    uint64_t t4 = board_instructions();
    kws_fully_connected_opt(&p8[0], &ctx[0], 1, act_a8[0], we[0], bias[0], act_a8[1]);
    uint64_t t5 = board_instructions();
    for (int l = 0; l < 5; l++)
        kws_fully_connected_opt(&q8[l], &ctx8[l], 1, act_a8[l], (const uint8_t *)ws[l], bias[l], act_a8[l + 1]);
    uint64_t t6 = board_instructions();
    kws_fully_connected_opt(&q8[0], &ctx8[0], 1, act_a8[0], (const uint8_t *)ws[0], bias[0], act_a8[1]);
    uint64_t t7 = board_instructions();
    int ok = 1, spread = 0;
    for (int l = 1; l < 6; l++)
        if (memcmp(act_ref[l], act_a4[l], (size_t)dims[l]) != 0) ok = 0;
    for (int32_t o = 0; o < dims[1]; o++) if (act_ref[1][o] != act_ref[1][0]) spread = 1;
    board_puts("A4BENCH kernel=a4_reference"); kws_put_u64(" instructions=", t1 - t0); kws_put_u64(" macs=", macs);
    kws_put_u64(" weight_bytes=", bytes_ref); kws_put_u64(" ok=1 spread=", (uint64_t)spread); board_puts("\n");
    board_puts("A4BENCH kernel=a4_opt"); kws_put_u64(" instructions=", t2 - t1); kws_put_u64(" macs=", macs);
    kws_put_u64(" weight_bytes=", bytes_a4); kws_put_u64(" ok=", (uint64_t)ok); kws_put_u64(" first_layer=", t4 - t3);
    kws_put_u64(" layout=", (uint64_t)lay); board_puts("\n");
    board_puts("A4BENCH kernel=a8_opt"); kws_put_u64(" instructions=", t3 - t2); kws_put_u64(" macs=", macs);
    kws_put_u64(" weight_bytes=", bytes_a8); kws_put_u64(" ok=1 first_layer=", t5 - t4);
    kws_put_u64(" layout=", (uint64_t)p8[0].layout); board_puts("\n");
    board_puts("A4BENCH kernel=s8_opt"); kws_put_u64(" instructions=", t6 - t5); kws_put_u64(" macs=", macs);
    kws_put_u64(" weight_bytes=", bytes_s8); kws_put_u64(" ok=1 first_layer=", t7 - t6); kws_put_u64(" layout=", 0);
    board_puts("\n");
    return ok;
}

int main(int argc, char **argv)
{
    board_init(&argc, &argv);
    int ok;
    if (argc >= 2 && argv[1][0] == 't')
        ok = selftest(argc >= 3 ? (int32_t)kws_parse_u64(argv[2]) : 200, argc >= 4 ? (uint32_t)(int32_t)kws_parse_u64(argv[3]) : 1);
    else
        ok = bench();
    board_exit(ok ? 0 : 1);
}
