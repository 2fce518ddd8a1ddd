/* kws_fc_a4_rows.h - the parts the Helium and NEON SUB8_FC_A4 kernels share (layout 6, rows_per_byte,
 * k = 2 or 4, inputs of <= 4 bits, input offset 0): the zero-padded copy of the activations and its
 * sum, the rows' dots from their telescoping sums, and the requantization of one output.
 *
 * Layout 6 (docs/formats.md): byte j of a group holds input j of G = 8/k rows, row r in bits
 * [k*r, k*r + k), lower rows biased (u = w + 2^(k-1)), the top row two's complement. Read as int8 and
 * shifted right arithmetically by k*r a byte is sum_{q >= r} 2^(k(q-r)) f_q, so with
 * S_r = sum_i x_i * (b_i >> k*r):  dot_r = S_r - 2^k S_{r+1} - 2^(k-1) sum x  (r < G-1),  dot_top = S_top.
 * All sums mod 2^32, as the reference's int32 accumulator. */
#ifndef KWS_FC_A4_ROWS_H
#define KWS_FC_A4_ROWS_H

#include <string.h>
#include "kws_fc_a4.h"
#include "kws_kernels_opt.h"

/* blocks of 16 inputs per row, and the bytes of one group of G rows */
static inline int32_t a4r_blocks(int32_t in_n) { return (in_n + 15) >> 4; }

static inline int a4r_supported(const kws_fc_a4_params *p)
{
    return p->fc.layout == KWS_LAYOUT_ROWS_PER_BYTE && (p->fc.bits == 2 || p->fc.bits == 4)
        && p->input_bits <= KWS_A4_MAX_INPUT_BITS && p->fc.act.input_offset == 0 && p->fc.in_features >= 1;
}

/* scratch: the activations zero-padded to whole blocks (read in place when in % 16 == 0) */
static inline size_t a4r_scratch_bytes(const kws_fc_a4_params *p) { return 16u * (size_t)a4r_blocks(p->fc.in_features); }

/* x -> xs zero-padded to 16 * nblk bytes when in_n is not a multiple of 16; returns the activations to read */
static inline const int8_t *a4r_padded(const int8_t *x, int32_t in_n, int8_t *xs)
{
    if ((in_n & 15) == 0) return x;
    const int32_t n = 16 * a4r_blocks(in_n);
    memcpy(xs, x, (size_t)in_n);
    memset(xs + in_n, 0, (size_t)(n - in_n));
    return xs;
}

/* dot of row r of a group of G = 8/K rows */
static inline int32_t a4r_dot(int32_t K, int32_t r, const int32_t *S, uint32_t sx)
{
    const int32_t G = 8 / K;
    if (r == G - 1) return S[r];
    return (int32_t)((uint32_t)S[r] - ((uint32_t)S[r + 1] << K) - (sx << (K - 1)));
}

/* one output: + bias (wrap-around), requantized and clamped like kws_fully_connected_a4 */
static inline int8_t a4r_out(const kws_fc_params *f, const int32_t *bias, int32_t o, int32_t acc)
{
    if (bias) acc = (int32_t)((uint32_t)acc + (uint32_t)bias[o]);
    return kws_fc_opt_requant(acc, f->multiplier[o], f->shift[o], &f->act);
}

#endif
