/* kws_selftest: the model and its test vectors linked into the image, results on the console.
 *
 *   kws_selftest [model] [vectors] [-q]          (files of the board: "model" and "data" by default)
 *
 * vectors: an SKTV v1 file (tflm_port.export: 40-byte header, then n inputs, then the n expected
 * outputs). For each vector: copy the input, kws_invoke, print the output bytes, compare with the
 * expected ones. Console:
 *   OUT <i> <output bytes in hex>                      (one per vector; not with -q)
 *   SELFTEST board=<name> vectors=<n> counter=<cycles|instructions> first=<n> mean=<n>
 *            arena=<bytes> stack=<bytes> model=<bytes> kernel=<isa> opt_ops=<n>
 *   PASS <n>/<n>   or   FAIL <matching>/<n> first_mismatch=<i>   (or FAIL status=<kws_status> ...)
 * and exits 0 on PASS, 1 on FAIL, the kws_status / 100+ on errors. The model is used in place
 * when the board maps files (board_file_data: flash); otherwise it is read into RAM. */
#include <string.h>
#include "kws.h"
#include "kws_board.h"
#include "kws_console.h"
#include "board_config.h"

#ifndef KWS_ARENA_SIZE
#define KWS_ARENA_SIZE (64 * 1024)
#endif
#ifndef KWS_MODEL_MAX
#define KWS_MODEL_MAX 16
#endif
#define SKTV_HEADER 40

static uint8_t arena[KWS_ARENA_SIZE] __attribute__((section(".bigbss"), aligned(16)));
static uint8_t model_buf[KWS_MODEL_MAX] __attribute__((section(".bigbss"), aligned(16)));
static kws_model model;

static void put_hex(const uint8_t *p, uint32_t n)
{
    static const char digits[] = "0123456789abcdef";
    char buf[65];
    while (n) {
        uint32_t k = n > 32 ? 32 : n, j = 0;
        for (uint32_t i = 0; i < k; i++) { buf[j++] = digits[p[i] >> 4]; buf[j++] = digits[p[i] & 15]; }
        buf[j] = 0;
        board_puts(buf);
        p += k;
        n -= k;
    }
}

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static const uint8_t *map_file(const char *name, long *size, uint8_t *buf, size_t cap)
{
    int h = board_open(name, 0);
    if (h < 0) return NULL;
    *size = board_file_size(h);
    const uint8_t *p = board_file_data(h);
    if (!p) {
        if (*size <= 0 || (size_t)*size > cap || board_read(h, buf, (size_t)*size) != *size) p = NULL;
        else p = buf;
    }
    board_close(h);
    return p;
}

static int fail(const char *msg, int code)
{
    board_puts("FAIL ");
    board_puts(msg);
    board_puts("\n");
    return code;
}

int main(int argc, char **argv)
{
    board_init(&argc, &argv);
    const char *model_name = "model", *vec_name = "data";
    int quiet = 0, pos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-q")) quiet = 1;
        else if (pos == 0) { model_name = argv[i]; pos++; }
        else vec_name = argv[i];
    }
    long msize = 0, vsize = 0;
    const uint8_t *m = map_file(model_name, &msize, model_buf, sizeof model_buf);
    if (!m) return fail("cannot open the model (or it does not fit KWS_MODEL_MAX)", 102);
    const uint8_t *v = map_file(vec_name, &vsize, NULL, 0);
    if (!v) return fail("cannot map the test vectors (this board must link them into flash)", 102);
    if (vsize < SKTV_HEADER || memcmp(v, "SKTV", 4) || (v[4] | v[5] << 8) != 1)
        return fail("test vectors are not an SKTV v1 file", 104);
    uint32_t hb = v[6] | v[7] << 8, n = rd32(v + 8), il = rd32(v + 12), ol = rd32(v + 16);
    if (hb < SKTV_HEADER || il == 0 || ol == 0 || n > 1000000 ||
        (uint64_t)hb + (uint64_t)n * ((uint64_t)il + ol) != (uint64_t)vsize)
        return fail("test vectors: size does not match the header", 104);

    kws_status st = kws_model_init(&model, m, (size_t)msize, arena, sizeof arena);
    if (st != KWS_OK) {
        board_puts("FAIL status=");
        kws_put_u64("", (uint64_t)st);
        board_puts(" ");
        board_puts(kws_strerror(st));
        board_puts(": ");
        board_puts(kws_model_error(&model));
        board_puts("\n");
        return (int)st;
    }
    kws_tensor *in = kws_input(&model, 0), *out = kws_output(&model, 0);
    if (in->bytes != il || out->bytes != ol) return fail("test vectors do not match the model's input/output sizes", 104);
    const uint8_t *xs = v + hb, *ys = xs + (size_t)n * il;
    uint64_t first = 0, total = 0;
    uint32_t good = 0, first_bad = n;
    for (uint32_t i = 0; i < n; i++) {
        memcpy(in->data, xs + (size_t)i * il, il);
        uint64_t t0 = board_instructions();
        st = kws_invoke(&model);
        uint64_t dt = board_instructions() - t0;
        if (st != KWS_OK) return fail(kws_model_error(&model), (int)st);
        if (i == 0) first = dt;
        total += dt;
        if (!quiet) {
            kws_put_u64("OUT ", i);
            board_puts(" ");
            put_hex((const uint8_t *)out->data, ol);
            board_puts("\n");
        }
        if (!memcmp(out->data, ys + (size_t)i * ol, ol)) good++;
        else if (first_bad == n) first_bad = i;
    }
    kws_put_u64("SELFTEST board=" BOARD_NAME " vectors=", n);
    board_puts(" counter=");
    board_puts(board_counter_unit());
    kws_put_u64(" first=", first);
    kws_put_u64(" mean=", n ? total / n : 0);
    kws_put_u64(" arena=", kws_arena_used(&model));
    kws_put_u64(" stack=", board_stack_used());
    kws_put_u64(" model=", (uint64_t)msize);
    board_puts(" kernel=");
    board_puts(kws_kernel_isa());
    kws_put_u64(" opt_ops=", model.num_opt_ops);
    board_puts("\n");
    if (good == n) {
        kws_put_u64("PASS ", good);
        kws_put_u64("/", n);
        board_puts("\n");
        return 0;
    }
    kws_put_u64("FAIL ", good);
    kws_put_u64("/", n);
    kws_put_u64(" first_mismatch=", first_bad);
    board_puts("\n");
    return 1;
}
