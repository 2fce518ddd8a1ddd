/* kws_fc_rows24_neon.h - FULLY_CONNECTED on 3-bit weights in layout 9 (rows24, docs/formats.md section 12)
 * for AArch64 NEON; included by kws_fully_connected_neon.c (it uses that file's requant4 / hsum4 / OUT), built
 * twice like it: armv8.2-a+dotprod (SDOT) and armv8.0-a (SMLAL into wrapping int16 lanes).
 *
 * A group of 8 rows stores per block of 16 inputs the bytes A, B, C of the inputs' 24-bit words. Read as int8
 * and shifted right arithmetically they telescope: with S_Xs = sum x * (X >> s), ten sums
 *   S_A0 S_A3 S_A6 | S_B0 S_B1 S_B4 S_B7 | S_C0 S_C2 S_C5      (7 SSHR per block, no masking)
 * give the 8 rows' dots d_r (d0 = S_A0 - 8 S_A3, d2 = S_A6 + 4 S_B0 - 8 S_B1, ..., d7 = S_C5) and
 * sum x*w_r = d_r - bias_r * sum x, bias = 4 4 2 4 4 3 4 0. Per block and group: dotprod 7 SSHR + 10 SDOT
 * (160 products for 128 MACs); armv8.0 7 SSHR + 20 SMLAL(2) into int16 lanes. The int16 lanes wrap, but the
 * combinations d_r are exact modulo 2^16 and their true values small: per lane two products per block of
 * |x v| <= 128 * 7, so a window of 16 blocks keeps |d_r| <= 28,672 < 2^15; each window ends with the
 * combination in int16 and 8 SADALP into int32. One assembly block per group (dotprod) or window (armv8.0):
 * the ten sums live in v20..v29, the loop reads 64 activations (LD1 of four registers) and per block the
 * 48 bytes A, B, C (LD1 of three). */
#ifndef KWS_FC_ROWS24_NEON_H
#define KWS_FC_ROWS24_NEON_H

#if defined(__ARM_FEATURE_DOTPROD)
#define R24_M(T, X, V) "sdot " T ".4s, " X ".16b, " V ".16b\n\t"
#else
#define R24_M(T, X, V) "smlal " T ".8h, " X ".8b, " V ".8b\n\tsmlal2 " T ".8h, " X ".16b, " V ".16b\n\t"
#endif
/* one block: activations in X, the group's bytes in v4 (A), v5 (B), v6 (C); the ten sums in v20..v29 =
 * S_A0 S_A3 S_A6 S_B0 S_B1 S_B4 S_B7 S_C0 S_C2 S_C5 */
#define R24_BLK(X) "ld1 {v4.16b-v6.16b}, [%[w]], #48\n\t"                                                       \
    R24_M("v20", X, "v4") "sshr v16.16b, v4.16b, #3\n\tsshr v17.16b, v4.16b, #6\n\t"                            \
    R24_M("v21", X, "v16") R24_M("v22", X, "v17") R24_M("v23", X, "v5")                                          \
    "sshr v16.16b, v5.16b, #1\n\tsshr v17.16b, v5.16b, #4\n\tsshr v18.16b, v5.16b, #7\n\t"                       \
    R24_M("v24", X, "v16") R24_M("v25", X, "v17") R24_M("v26", X, "v18") R24_M("v27", X, "v6")                   \
    "sshr v16.16b, v6.16b, #2\n\tsshr v17.16b, v6.16b, #5\n\t" R24_M("v28", X, "v16") R24_M("v29", X, "v17")
/* n4 steps of four blocks (LD1 of four registers of activations), then n1 single blocks; the sums start at 0 */
#define R24_LOOP(Z) "movi v20." Z ", #0\n\tmovi v21." Z ", #0\n\tmovi v22." Z ", #0\n\tmovi v23." Z ", #0\n\t"    \
    "movi v24." Z ", #0\n\tmovi v25." Z ", #0\n\tmovi v26." Z ", #0\n\tmovi v27." Z ", #0\n\t"                     \
    "movi v28." Z ", #0\n\tmovi v29." Z ", #0\n\tcbz %[n4], 2f\n\t"                                               \
    "1:\n\tld1 {v0.16b-v3.16b}, [%[x]], #64\n\t" R24_BLK("v0") R24_BLK("v1") R24_BLK("v2") R24_BLK("v3")           \
    "subs %[n4], %[n4], #1\n\tb.ne 1b\n\t2:\n\tcbz %[n1], 4f\n\t"                                                \
    "3:\n\tld1 {v0.16b}, [%[x]], #16\n\t" R24_BLK("v0") "subs %[n1], %[n1], #1\n\tb.ne 3b\n\t4:\n\t"
#define R24_CLOBBER "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v16", "v17", "v18", "v20", "v21", \
    "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29"

static __attribute__((noinline)) void fc_rows24(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int8_t *x,
                                                const int8_t *w, const int32_t *bias, int8_t *y)
{
    const int32_t in_n = p->in_features, out_n = p->out_features, off = p->act.input_offset;
    const int32_t nblk = (in_n + 15) >> 4, pad = 16 * nblk;
    const int8_t *xs = x;
    int32_t i = 0;
    int32x4_t sacc = vdupq_n_s32(0);
    if (in_n == pad) {   /* whole blocks: the kernel reads the input itself, only its sum is needed */
        for (; i < in_n; i += 16) sacc = vpadalq_s16(sacc, vpaddlq_s8(vld1q_s8(x + i)));
    } else {             /* a zero-padded copy in the scratch */
        int8_t *xc = ctx->scratch;
        for (; i + 16 <= in_n; i += 16) {
            int8x16_t v = vld1q_s8(x + i);
            vst1q_s8(xc + i, v);
            sacc = vpadalq_s16(sacc, vpaddlq_s8(v));
        }
        for (; i < pad; i++) xc[i] = i < in_n ? x[i] : 0;
        xs = xc;
    }
    int32_t sx = vaddvq_s32(sacc);
    for (i = in_n & ~15; i < in_n; i++) sx += x[i];
    const int32_t c_lo[4] = {4 * sx, 4 * sx, 2 * sx, 4 * sx}, c_hi[4] = {4 * sx, 3 * sx, 4 * sx, 0};
    const int32x4_t corr_lo = vld1q_s32(c_lo), corr_hi = vld1q_s32(c_hi);
    const int8_t *wg = w;
    for (int32_t o = 0; o < out_n; o += 8) {
        const int8_t *xp = xs;
        int32x4_t d0, d1, d2, d3, d4, d5, d6, d7;
#if defined(__ARM_FEATURE_DOTPROD)
        /* the ten sums, then the rows: d0 = S_A0 - 8 S_A3, ..., d7 = S_C5 (int32 lanes, wrap-around) */
        int64_t n4 = nblk >> 2, n1 = nblk & 3;
        __asm__ volatile(R24_LOOP("4s")
                         "shl v16.4s, v21.4s, #3\n\tsub %[d0].4s, v20.4s, v16.4s\n\t"
                         "shl v16.4s, v22.4s, #3\n\tsub %[d1].4s, v21.4s, v16.4s\n\t"
                         "shl v16.4s, v23.4s, #2\n\tadd v16.4s, v22.4s, v16.4s\n\tshl v17.4s, v24.4s, #3\n\t"
                         "sub %[d2].4s, v16.4s, v17.4s\n\t"
                         "shl v16.4s, v25.4s, #3\n\tsub %[d3].4s, v24.4s, v16.4s\n\t"
                         "shl v16.4s, v26.4s, #3\n\tsub %[d4].4s, v25.4s, v16.4s\n\t"
                         "shl v16.4s, v27.4s, #1\n\tadd v16.4s, v26.4s, v16.4s\n\tshl v17.4s, v28.4s, #3\n\t"
                         "sub %[d5].4s, v16.4s, v17.4s\n\t"
                         "shl v16.4s, v29.4s, #3\n\tsub %[d6].4s, v28.4s, v16.4s\n\tmov %[d7].16b, v29.16b\n\t"
                         : [x] "+r"(xp), [w] "+r"(wg), [n4] "+r"(n4), [n1] "+r"(n1), [d0] "=&w"(d0), [d1] "=&w"(d1),
                           [d2] "=&w"(d2), [d3] "=&w"(d3), [d4] "=&w"(d4), [d5] "=&w"(d5), [d6] "=&w"(d6),
                           [d7] "=&w"(d7)
                         :
                         : R24_CLOBBER);
#else
        /* windows of up to 16 blocks in wrapping int16 lanes; each ends with the rows in int16
         * (h0 -= 8 h1; h1 -= 8 h2; h2 += 4 h3 - 8 h4; h4 -= 8 h5; h5 -= 8 h6; h6 += 2 h7 - 8 h8; h8 -= 8 h9,
         * each before its operand changes: MLS / MLA by element of k = {8, 4, 2}) and 8 SADALP into int32 */
        const int16x4_t k = vcreate_s16(0x0000000200040008ull);
        d0 = d1 = d2 = d3 = d4 = d5 = d6 = d7 = vdupq_n_s32(0);
        for (int32_t c0 = 0; c0 < nblk; c0 += 16) {
            const int32_t nb = nblk - c0 < 16 ? nblk - c0 : 16;
            int64_t n4 = nb >> 2, n1 = nb & 3;
            __asm__ volatile(R24_LOOP("8h")
                             "mls v20.8h, v21.8h, %[k].h[0]\n\tmls v21.8h, v22.8h, %[k].h[0]\n\t"
                             "mla v22.8h, v23.8h, %[k].h[1]\n\tmls v22.8h, v24.8h, %[k].h[0]\n\t"
                             "mls v24.8h, v25.8h, %[k].h[0]\n\tmls v25.8h, v26.8h, %[k].h[0]\n\t"
                             "mla v26.8h, v27.8h, %[k].h[2]\n\tmls v26.8h, v28.8h, %[k].h[0]\n\t"
                             "mls v28.8h, v29.8h, %[k].h[0]\n\t"
                             "sadalp %[d0].4s, v20.8h\n\tsadalp %[d1].4s, v21.8h\n\tsadalp %[d2].4s, v22.8h\n\t"
                             "sadalp %[d3].4s, v24.8h\n\tsadalp %[d4].4s, v25.8h\n\tsadalp %[d5].4s, v26.8h\n\t"
                             "sadalp %[d6].4s, v28.8h\n\tsadalp %[d7].4s, v29.8h\n\t"
                             : [x] "+r"(xp), [w] "+r"(wg), [n4] "+r"(n4), [n1] "+r"(n1), [d0] "+w"(d0), [d1] "+w"(d1),
                               [d2] "+w"(d2), [d3] "+w"(d3), [d4] "+w"(d4), [d5] "+w"(d5), [d6] "+w"(d6),
                               [d7] "+w"(d7)
                             : [k] "x"(k)
                             : R24_CLOBBER);
        }
#endif
        const int32x4_t lo = vsubq_s32(hsum4(d0, d1, d2, d3), corr_lo);
        const int32x4_t hi = vsubq_s32(hsum4(d4, d5, d6, d7), corr_hi);
        if (o + 8 <= out_n) {
            requant4(p, ctx, bias, o, 0, lo, y);
            requant4(p, ctx, bias, o + 4, 0, hi, y);
        } else {   /* last group: out % 8 rows */
            int32_t dd[8];
            vst1q_s32(dd, lo);
            vst1q_s32(dd + 4, hi);
            for (int32_t r = 0; o + r < out_n; r++) OUT(dd[r], 0, o + r);
        }
    }
}
#undef R24_CLOBBER
#undef R24_LOOP
#undef R24_BLK
#undef R24_M

#endif
