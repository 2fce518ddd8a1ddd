/* kws_fc_opt_layouts.c - the C reader, packer and prepare-time helpers of the optimized
 * kernels' weight layouts (docs/formats.md layouts 2 "r4_words", 3 "r4_nib32", 6 "rows_per_byte",
 * 8 "lanes16" and 9 "rows24").
 * Not speed-critical: used at prepare time, by the kernel bench and by the self-test. */
#include <string.h>
#include "kws_kernels_opt.h"

/* sizes: kws_layout_table.h, generated from tflm_port/layout_table.py (the converter's table) */
int32_t kws_fc_opt_words_per(int32_t bits)
{
    return bits >= 1 && bits <= 7 ? kws_layout_units[KWS_LAYOUT_R4_WORDS][bits].unit_inputs : -1;
}

int32_t kws_fc_opt_row_bytes(int32_t layout, int32_t bits, int32_t in_features)
{
    int64_t rb = kws_layout_row_bytes(layout, bits, in_features);
    return rb > INT32_MAX ? -1 : (int32_t)rb;
}

int64_t kws_fc_opt_packed_bytes(int32_t layout, int32_t bits, int32_t out_features, int32_t in_features)
{
    return kws_layout_packed_bytes(layout, bits, out_features, in_features);
}

/* byte offset of (row o, unit c) in a 4-row-interleaved layout with unit_bytes per unit */
static size_t r4_offset(int32_t out_n, int32_t row_bytes, int32_t o, int32_t c, int32_t unit_bytes)
{
    int32_t g0 = o & ~3, G = out_n - g0 < 4 ? out_n - g0 : 4;
    return (size_t)g0 * (size_t)row_bytes + ((size_t)c * (size_t)G + (size_t)(o - g0)) * (size_t)unit_bytes;
}

/* k-bit field value -> integer weight (two's complement; k = 1: 1 -> +1, 0 -> -1) */
static int32_t field_value(uint32_t f, int32_t k)
{
    if (k == 1) return f ? 1 : -1;
    uint32_t s = 1u << (k - 1);
    return (int32_t)(f ^ s) - (int32_t)s;
}

void kws_fc_opt_lanes16_place(int32_t bits, int32_t q, int32_t i, int32_t *word, int32_t *bit)
{
    if (bits == 4) {
        *word = 2 * (i / 4) + (i % 4) / 2;
        *bit = 16 * (i % 2) + 4 * q;
        return;
    }
    const int32_t per = bits == 2 ? 8 : 16, e = (i % per) / 2;
    const int32_t s = bits == 2 ? 2 + 4 * e : 2 * e + 1;
    *word = 2 * (i / per) + q / 2;
    *bit = (s + 16 * (i % 2) + (16 - bits) * (q % 2)) % 32;
}

/* layout 8: is row q of a group the lane's top field (two's complement)? */
static int lanes16_top(int32_t bits, int32_t q) { return bits == 4 ? q == 3 : (q & 1); }

/* byte offset of the 32-bit word holding (row o, input i) in layout 8, and the field's bit */
static size_t lanes16_offset(int32_t bits, int32_t rb, int32_t o, int32_t i, int32_t *bit)
{
    int32_t word;
    kws_fc_opt_lanes16_place(bits, o & 3, i, &word, bit);
    return (size_t)(o >> 2) * 4u * (size_t)rb + 4u * (size_t)word;
}

/* layout 9: byte offset of byte q (0..2) of input i's 24-bit word in row o's group; the bits of row o's
 * field that land on a byte's bit 7 are stored inverted (kws_fc_opt_rows24_flip) */
static size_t rows24_offset(int32_t in_n, int32_t o, int32_t i, int32_t q)
{
    const int32_t nblk = (in_n + 15) / 16;
    return ((size_t)(o / 8) * (size_t)nblk + (size_t)(i / 16)) * 48u + 16u * (size_t)q + (size_t)(i % 16);
}

int32_t kws_fc_opt_rows24_flip(int32_t r)
{
    int32_t m = 0;
    for (int32_t j = 0; j < 3; j++) if ((3 * r + j) % 8 == 7) m |= 1 << j;
    return m;
}

int32_t kws_fc_opt_weight(const kws_fc_params *p, const uint8_t *w, int32_t o, int32_t i)
{
    const int32_t k = p->bits, in_n = p->in_features;
    const int32_t rb = kws_fc_opt_row_bytes(p->layout, k, in_n);
    if (p->layout == KWS_LAYOUT_ROW_LSB) {
        if (k == 8) return (int8_t)w[(size_t)o * in_n + i];
        const uint8_t *row = w + (size_t)o * rb;
        uint32_t bit = (uint32_t)i * (uint32_t)k;
        uint32_t v = row[bit >> 3];
        if ((bit & 7) + (uint32_t)k > 8) v |= (uint32_t)row[(bit >> 3) + 1] << 8;
        return field_value((v >> (bit & 7)) & ((1u << k) - 1u), k);
    }
    if (p->layout == KWS_LAYOUT_R4_WORDS) {
        const int32_t n = kws_fc_opt_words_per(k);
        const uint8_t *b = w + r4_offset(p->out_features, rb, o, i / n, 4);
        uint32_t word = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        int32_t j = i % n;
        if (k == 1) return (word >> kws_fc_opt_bit1_pos(j)) & 1u ? 1 : -1;
        uint32_t pos = (uint32_t)(j & 1) * 16u + (uint32_t)(j >> 1) * (uint32_t)k;
        return (int32_t)((word >> pos) & ((1u << k) - 1u)) - (1 << (k - 1));
    }
    if (p->layout == KWS_LAYOUT_ROWS_PER_BYTE) {
        const int32_t G = 8 / k, pad = 16 * ((in_n + 15) / 16), r = o % G;
        uint32_t f = ((uint32_t)w[(size_t)(o / G) * pad + i] >> (k * r)) & ((1u << k) - 1u);
        if (k == 1) return f ? 1 : -1;
        if (r == G - 1) return field_value(f, k);   /* top row: two's complement */
        return (int32_t)f - (1 << (k - 1));         /* lower rows: biased */
    }
    if (p->layout == KWS_LAYOUT_LANES16) {
        int32_t bit;
        const uint8_t *b = w + lanes16_offset(k, rb, o, i, &bit);
        uint32_t word = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        uint32_t f = (word >> bit) & ((1u << k) - 1u);
        if (k == 1) return f ? 1 : -1;
        return lanes16_top(k, o & 3) ? field_value(f, k) : (int32_t)f - (1 << (k - 1));
    }
    if (p->layout == KWS_LAYOUT_ROWS24) {
        const int32_t r = o % 8, s = 3 * r;
        uint32_t word = 0;
        for (int32_t q = 0; q < 3; q++) word |= (uint32_t)w[rows24_offset(in_n, o, i, q)] << (8 * q);
        return (int32_t)(((word >> s) & 7u) ^ (uint32_t)kws_fc_opt_rows24_flip(r)) - 4;
    }
    /* KWS_LAYOUT_R4_NIB32 */
    const uint8_t *blk = w + r4_offset(p->out_features, rb, o, i / 32, 16);
    int32_t j = i % 32;
    uint32_t nib = j < 16 ? blk[j] & 0xFu : blk[j - 16] >> 4;
    return (int32_t)nib - 8;
}

void kws_fc_opt_pack(int32_t layout, int32_t k, int32_t out_n, int32_t in_n, const int8_t *w, uint8_t *packed)
{
    const int32_t rb = kws_fc_opt_row_bytes(layout, k, in_n);
    const int64_t total = kws_fc_opt_packed_bytes(layout, k, out_n, in_n);
    if (total < 0) return;
    memset(packed, 0, (size_t)total);
    if (layout == KWS_LAYOUT_ROWS24) {   /* every field written, padding rows and inputs as weight 0 */
        const int32_t rows = (out_n + 7) / 8 * 8, cols = (in_n + 15) / 16 * 16;
        for (int32_t o = 0; o < rows; o++)
            for (int32_t i = 0; i < cols; i++) {
                const int32_t v = o < out_n && i < in_n ? w[(size_t)o * in_n + i] : 0, s = 3 * (o % 8);
                const uint32_t f = ((uint32_t)(v + 4) ^ (uint32_t)kws_fc_opt_rows24_flip(o % 8)) << s;
                for (int32_t q = 0; q < 3; q++) packed[rows24_offset(in_n, o, i, q)] |= (uint8_t)(f >> (8 * q));
            }
        return;
    }
    for (int32_t o = 0; o < out_n; o++) {
        for (int32_t i = 0; i < in_n; i++) {
            int32_t v = w[(size_t)o * in_n + i];
            if (layout == KWS_LAYOUT_ROW_LSB) {
                if (k == 8) { packed[(size_t)o * in_n + i] = (uint8_t)v; continue; }
                uint32_t f = k == 1 ? (v > 0) : ((uint32_t)v & ((1u << k) - 1u));
                uint32_t bit = (uint32_t)i * (uint32_t)k;
                uint8_t *row = packed + (size_t)o * rb;
                row[bit >> 3] |= (uint8_t)(f << (bit & 7));
                if ((bit & 7) + (uint32_t)k > 8) row[(bit >> 3) + 1] |= (uint8_t)(f >> (8 - (bit & 7)));
            } else if (layout == KWS_LAYOUT_ROWS_PER_BYTE) {
                const int32_t G = 8 / k, pad = 16 * ((in_n + 15) / 16), r = o % G;
                uint32_t f = k == 1 ? (uint32_t)(v > 0)
                           : r == G - 1 ? ((uint32_t)v & ((1u << k) - 1u)) : (uint32_t)(v + (1 << (k - 1)));
                packed[(size_t)(o / G) * pad + i] |= (uint8_t)(f << (k * r));
            } else if (layout == KWS_LAYOUT_LANES16) {
                int32_t bit;
                uint8_t *b = packed + lanes16_offset(k, rb, o, i, &bit);
                uint32_t f = k == 1 ? (uint32_t)(v > 0)
                           : lanes16_top(k, o & 3) ? ((uint32_t)v & ((1u << k) - 1u)) : (uint32_t)(v + (1 << (k - 1)));
                f <<= bit;
                b[0] |= (uint8_t)f; b[1] |= (uint8_t)(f >> 8); b[2] |= (uint8_t)(f >> 16); b[3] |= (uint8_t)(f >> 24);
            } else if (layout == KWS_LAYOUT_R4_WORDS) {
                const int32_t n = kws_fc_opt_words_per(k);
                uint8_t *b = packed + r4_offset(out_n, rb, o, i / n, 4);
                int32_t j = i % n;
                uint32_t pos, f;
                if (k == 1) { pos = (uint32_t)kws_fc_opt_bit1_pos(j); f = v > 0; }
                else { pos = (uint32_t)(j & 1) * 16u + (uint32_t)(j >> 1) * (uint32_t)k; f = (uint32_t)(v + (1 << (k - 1))); }
                uint32_t word = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
                word |= f << pos;
                b[0] = (uint8_t)word; b[1] = (uint8_t)(word >> 8); b[2] = (uint8_t)(word >> 16); b[3] = (uint8_t)(word >> 24);
            } else {
                uint8_t *blk = packed + r4_offset(out_n, rb, o, i / 32, 16);
                int32_t j = i % 32;
                uint32_t u = (uint32_t)(v + 8);
                if (j < 16) blk[j] |= (uint8_t)u;
                else blk[j - 16] |= (uint8_t)(u << 4);
            }
        }
    }
}

void kws_fc_opt_row_sums(const kws_fc_params *p, const uint8_t *weights, int32_t *row_sums)
{
    for (int32_t o = 0; o < p->out_features; o++) {
        int32_t s = 0;
        for (int32_t i = 0; i < p->in_features; i++) s += kws_fc_opt_weight(p, weights, o, i);
        row_sums[o] = s;
    }
}
