/* Host unit tests of the integer arithmetic and the FlexBuffer reader (ASan/UBSan build).
 * Operator-level and model-level tests are driven by tests/test_firmware*.py. */
#include <stdio.h>
#include <string.h>
#include "kws_kernels.h"
#include "kws_fb.h"

static int failures;
#define CHECK(c) do { if (!(c)) { printf("FAIL %s:%d %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)

int main(void)
{
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
