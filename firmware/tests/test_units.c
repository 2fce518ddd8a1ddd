/* Host unit tests of the integer arithmetic and the FlexBuffer reader (ASan/UBSan build).
 * Operator-level and model-level tests are driven by tests/test_firmware*.py. */
#include <stdio.h>
#include <string.h>
#include "kws_kernels.h"
#include "kws_fb.h"

static int failures;
#define CHECK(c) do { if (!(c)) { printf("FAIL %s:%d %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)

/* Unpack row 0 of a layout-0 weight matrix through the kernel itself: one-hot inputs, multiplier 1. */
static void unpack_row(const uint8_t *row, int bits, int in_n, int32_t *w)
{
    int32_t mult, shift;
    kws_quantize_multiplier(1.0, &mult, &shift);
    kws_fc_params p;
    memset(&p, 0, sizeof p);
    p.act.act_min = -128; p.act.act_max = 127;
    p.in_features = in_n; p.out_features = 1;
    p.multiplier = &mult; p.shift = &shift;
    p.bits = bits; p.row_bytes = (in_n * bits + 7) / 8;
    for (int i = 0; i < in_n; i++) {
        int8_t x[64] = {0}, y;
        x[i] = 1;
        kws_fully_connected_sub8(&p, 1, x, row, NULL, &y);
        w[i] = y;
    }
}

/* The byte diagrams of docs/formats.md section 3 (layout 0 "row_lsb") */
static void test_layout0_examples(void)
{
    int32_t w[16];
    static const uint8_t k4[] = {0xE1, 0x97, 0x03};
    unpack_row(k4, 4, 5, w);
    CHECK(w[0] == 1 && w[1] == -2 && w[2] == 7 && w[3] == -7 && w[4] == 3);
    static const uint8_t k5[] = {0xE1, 0x3F, 0x00};
    unpack_row(k5, 5, 4, w);
    CHECK(w[0] == 1 && w[1] == -1 && w[2] == 15 && w[3] == 0);
    static const uint8_t k1[] = {0xB9, 0x00};
    static const int32_t e1[9] = {1, -1, -1, 1, 1, 1, -1, 1, -1};
    unpack_row(k1, 1, 9, w);
    for (int i = 0; i < 9; i++) CHECK(w[i] == e1[i]);
    /* k = 8 is the plain int8 row */
    static const uint8_t k8[] = {0x80, 0x7F, 0xFF, 0x01};
    unpack_row(k8, 8, 4, w);
    CHECK(w[0] == -128 && w[1] == 127 && w[2] == -1 && w[3] == 1);
}

/* INT4 packing: [1,2,3,4] -> 0x21 0x43, over the whole tensor (a row may start mid-byte) */
static void test_int4_packing(void)
{
    int32_t mult, shift;
    kws_quantize_multiplier(1.0, &mult, &shift);
    int32_t m3[3] = {mult, mult, mult}, s3[3] = {shift, shift, shift};
    kws_fc_params p;
    memset(&p, 0, sizeof p);
    p.act.act_min = -128; p.act.act_max = 127;
    p.in_features = 3; p.out_features = 3; p.multiplier = m3; p.shift = s3;
    static const uint8_t w[] = {0x21, 0x43, 0xF5, 0x9E, 0x07}; /* 1 2 3 4 5 -1 -2 -7 7 */
    static const int32_t want[9] = {1, 2, 3, 4, 5, -1, -2, -7, 7};
    for (int i = 0; i < 3; i++) {
        int8_t x[3] = {0, 0, 0}, y[3];
        x[i] = 1;
        kws_fully_connected_s4(&p, 1, x, w, NULL, y);
        for (int o = 0; o < 3; o++) CHECK(y[o] == want[o * 3 + i]);
    }
}

int main(void)
{
    test_layout0_examples();
    test_int4_packing();
    int32_t m, s;
    kws_quantize_multiplier(0.5, &m, &s);
    CHECK(m == 1073741824 && s == 0);
    kws_quantize_multiplier(1.0, &m, &s);
    CHECK(m == 1073741824 && s == 1);
    kws_quantize_multiplier(0.0, &m, &s);
    CHECK(m == 0 && s == 0);
    kws_quantize_multiplier(1e-12, &m, &s);
    CHECK(m == 0 && s == 0);
    /* rounding of the mantissa that reaches 2^31 */
    kws_quantize_multiplier(0.99999999999, &m, &s);
    CHECK(m == 1073741824 && s == 1);

    CHECK(kws_rounding_divide_by_pot(5, 1) == 3);
    CHECK(kws_rounding_divide_by_pot(-5, 1) == -3);
    CHECK(kws_rounding_divide_by_pot(-4, 1) == -2);
    CHECK(kws_srdhm(INT32_MIN, INT32_MIN) == INT32_MAX);
    CHECK(kws_multiply_by_quantized_multiplier(1000, 1073741824, 0) == 500);
    CHECK(kws_multiply_by_quantized_multiplier(-1000, 1073741824, -1) == -250);

    /* FlexBuffer map {"a": 5, "b": "RELU"} as written by the Python flexbuffers builder */
    static const uint8_t fx[] = {0x61, 0x00, 0x62, 0x00, 0x04, 0x52, 0x45, 0x4c, 0x55, 0x00, 0x02, 0x0b, 0x0a,
                                 0x02, 0x01, 0x02, 0x05, 0x0c, 0x04, 0x14, 0x04, 0x24, 0x01};
    int64_t v = 0;
    const char *str; uint32_t slen;
    int r = kws_flex_map_int(fx, sizeof fx, "a", &v);
    CHECK(r == 0 && v == 5);
    CHECK(kws_flex_map_string(fx, sizeof fx, "b", &str, &slen) == 0 && slen == 4 && memcmp(str, "RELU", 4) == 0);
    CHECK(kws_flex_map_int(fx, sizeof fx, "c", &v) == 1);
    CHECK(kws_flex_map_int(fx, sizeof fx, "b", &v) == -1);
    CHECK(kws_flex_is_map(fx, sizeof fx));
    for (size_t cut = 0; cut < sizeof fx; cut++) { /* truncations never crash */
        kws_flex_map_int(fx, (uint32_t)cut, "a", &v);
        kws_flex_map_string(fx, (uint32_t)cut, "b", &str, &slen);
    }
    printf("%s (%d failures)\n", failures ? "FAILED" : "OK", failures);
    return failures ? 1 : 0;
}
