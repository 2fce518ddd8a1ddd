/* kws_fc_rows24_mve.h - FULLY_CONNECTED on 3-bit weights in layout 9 (rows24, docs/formats.md section 12) for
 * Helium (MVE); included by kws_fully_connected_mve.c (it uses that file's pad_copy / acc_buf / OUT /
 * requant_layer).
 *
 * A group of 8 rows stores per block of 16 inputs the bytes A, B, C of the inputs' 24-bit words. Read as int8
 * and shifted right arithmetically they telescope: with S_Xs = sum x * (X >> s) the ten sums
 *   S_A0 S_A3 S_A6 S_B0 S_B1 S_B4 S_B7 | S_C0 S_C2 S_C5
 * give the 8 rows' dots (d0 = S_A0 - 8 S_A3, ..., d2 = S_A6 + 4 S_B0 - 8 S_B1, ..., d7 = S_C5) and
 * sum x*w_r = d_r - bias_r * sum x, bias = 4 4 2 4 4 3 4 0. VMLADAVA accumulates into even registers only
 * (r0..r12, lr: eight), so a group takes two passes over the activations: A and B into seven accumulators
 * r0..r12 (per block 3 VLDRB + 5 VSHR + 7 VMLADAVA), then C into three (2 VLDRB + 2 VSHR + 3 VMLADAVA);
 * 22 instructions per 16 inputs x 8 rows against 18 for 8-bit or layout-6 4-bit weights. Low-overhead loops
 * (WLS/LE in lr), two blocks per iteration, an odd block before the loop. */
#ifndef KWS_FC_ROWS24_MVE_H
#define KWS_FC_ROWS24_MVE_H

/* pass 1, one block: activations q0, A q1 (then the pointer moves to the next block), B q2 */
#define R24_AB "vldrb.8 q0, [%[x]], #16\n\tvldrb.8 q2, [%[w], #16]\n\tvldrb.8 q1, [%[w]], #48\n\t"              \
    "vmladava.s8 %[a0], q0, q1\n\tvshr.s8 q3, q1, #3\n\tvmladava.s8 %[a1], q0, q3\n\t"                          \
    "vshr.s8 q3, q1, #6\n\tvmladava.s8 %[a2], q0, q3\n\tvmladava.s8 %[a3], q0, q2\n\t"                          \
    "vshr.s8 q3, q2, #1\n\tvmladava.s8 %[a4], q0, q3\n\tvshr.s8 q3, q2, #4\n\tvmladava.s8 %[a5], q0, q3\n\t"    \
    "vshr.s8 q3, q2, #7\n\tvmladava.s8 %[a6], q0, q3\n\t"
/* pass 2, one block: activations q0, C q1 */
#define R24_C "vldrb.8 q0, [%[x]], #16\n\tvldrb.8 q1, [%[w]], #48\n\t"                                           \
    "vmladava.s8 %[a0], q0, q1\n\tvshr.s8 q3, q1, #2\n\tvmladava.s8 %[a1], q0, q3\n\t"                          \
    "vshr.s8 q3, q1, #5\n\tvmladava.s8 %[a2], q0, q3\n\t"
#define R24_LOOP(B) "wls lr, lr, 2f\n\t1:\n\t" B B "le lr, 1b\n\t2:\n\t"

static void fc_rows24(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int8_t *x, const int8_t *w,
                      const int32_t *bias, int8_t *y)
{
    const int32_t in_n = p->in_features, out_n = p->out_features;
    const int32_t nblk = (in_n + 15) >> 4;
    int8_t *xs = ctx->scratch;
    const int32_t sx = pad_copy(x, in_n, nblk, xs);
    const uint32_t u = (uint32_t)sx;
    int32_t *acc = acc_buf(ctx, in_n);
    const int8_t *wg = w;
    for (int32_t o = 0; o < out_n; o += 8) {
        uint32_t s[10];
        {   /* pass 1: A and B */
            register int32_t a0 __asm__("r0"), a1 __asm__("r2"), a2 __asm__("r4"), a3 __asm__("r6");
            register int32_t a4 __asm__("r8"), a5 __asm__("r10"), a6 __asm__("r12");
            register int32_t cnt __asm__("lr") = nblk >> 1;
            const int8_t *xp = xs, *wp = wg;
#define R24_PASS1(ODD) __asm__ volatile("mov %[a0], #0\n\tmov %[a1], #0\n\tmov %[a2], #0\n\tmov %[a3], #0\n\t"     \
    "mov %[a4], #0\n\tmov %[a5], #0\n\tmov %[a6], #0\n\t" ODD R24_LOOP(R24_AB)                                     \
    : [x] "+r"(xp), [w] "+r"(wp), [n] "+r"(cnt), [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3),  \
      [a4] "=&r"(a4), [a5] "=&r"(a5), [a6] "=&r"(a6) : : "memory", "q0", "q1", "q2", "q3")
            if (nblk & 1) R24_PASS1(R24_AB);
            else R24_PASS1("");
#undef R24_PASS1
            s[0] = (uint32_t)a0; s[1] = (uint32_t)a1; s[2] = (uint32_t)a2; s[3] = (uint32_t)a3;
            s[4] = (uint32_t)a4; s[5] = (uint32_t)a5; s[6] = (uint32_t)a6;
        }
        {   /* pass 2: C */
            register int32_t a0 __asm__("r0"), a1 __asm__("r2"), a2 __asm__("r4");
            register int32_t cnt __asm__("lr") = nblk >> 1;
            const int8_t *xp = xs, *wp = wg + 32;
#define R24_PASS2(ODD) __asm__ volatile("mov %[a0], #0\n\tmov %[a1], #0\n\tmov %[a2], #0\n\t" ODD R24_LOOP(R24_C)   \
    : [x] "+r"(xp), [w] "+r"(wp), [n] "+r"(cnt), [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2)                   \
    : : "memory", "q0", "q1", "q3")
            if (nblk & 1) R24_PASS2(R24_C);
            else R24_PASS2("");
#undef R24_PASS2
            s[7] = (uint32_t)a0; s[8] = (uint32_t)a1; s[9] = (uint32_t)a2;
        }
        /* the rows, wrap-around like the sums */
        int32_t d[8];
        d[0] = (int32_t)(s[0] - (s[1] << 3) - (u << 2));
        d[1] = (int32_t)(s[1] - (s[2] << 3) - (u << 2));
        d[2] = (int32_t)(s[2] + (s[3] << 2) - (s[4] << 3) - (u << 1));
        d[3] = (int32_t)(s[4] - (s[5] << 3) - (u << 2));
        d[4] = (int32_t)(s[5] - (s[6] << 3) - (u << 2));
        d[5] = (int32_t)(s[6] + (s[7] << 1) - (s[8] << 3) - 3u * u);
        d[6] = (int32_t)(s[8] - (s[9] << 3) - (u << 2));
        d[7] = (int32_t)s[9];
        for (int32_t r = 0; r < 8 && o + r < out_n; r++) OUT(d[r], 0, o + r);
        wg += 48 * nblk;
    }
    requant_layer(p, ctx, bias, acc, y);
}
#undef R24_LOOP
#undef R24_C
#undef R24_AB

#endif
