/* kws_runner: one firmware image for every model.
 *
 *   kws_runner <model.tflite> <inputs.bin> <outputs.bin> [max_vectors]
 *
 * Loads the model (semihosting or stdio), runs one inference per input vector (raw bytes of
 * the input tensor, back to back) and appends the raw output tensor bytes to outputs.bin.
 * Prints one line:
 *   KWS status=<n> inferences=<n> instr_first=<n> instr_total=<n> arena=<bytes> stack=<bytes> model=<bytes>
 *       op=<i> tensor=<i> kernel=<isa> opt_ops=<n FC ops on the optimized kernel>
 * and exits with the kws_status (0 = ok). Exit codes 100+ are runner/board failures. */
#include <string.h>
#include "kws.h"
#include "kws_board.h"
#include "kws_console.h"

#ifndef KWS_MODEL_MAX
#define KWS_MODEL_MAX (1280 * 1024)
#endif
#ifndef KWS_ARENA_SIZE
#define KWS_ARENA_SIZE (256 * 1024)
#endif

#if defined(__arm__)
#define BIG __attribute__((section(".bigbss"), aligned(16)))
#else
#define BIG __attribute__((aligned(16)))
#endif

static uint8_t model_buf[KWS_MODEL_MAX] BIG;
static uint8_t arena[KWS_ARENA_SIZE] BIG;
static kws_model model;

int main(int argc, char **argv)
{
    board_init(&argc, &argv);
    if (argc < 4) {
        board_puts("usage: kws_runner model.tflite inputs.bin outputs.bin [max_vectors]\n");
        return 101;
    }
    uint64_t max_vectors = argc > 4 ? kws_parse_u64(argv[4]) : (uint64_t)-1;
    int h = board_open(argv[1], 0);
    if (h < 0) { board_puts("cannot open model\n"); return 102; }
    long size = board_file_size(h);
    if (size < 0) { board_puts("cannot read the model file size\n"); return 102; }
    if (size == 0) { board_puts("model file is empty (0 bytes)\n"); return 103; }
    if (size > (long)sizeof model_buf) { board_puts("model too large for KWS_MODEL_MAX\n"); return 103; }
    if (board_read(h, model_buf, (size_t)size) != size) { board_puts("model read failed\n"); return 102; }
    board_close(h);

    kws_status st = kws_model_init(&model, model_buf, (size_t)size, arena, sizeof arena);
    uint64_t n = 0, first = 0, total = 0;
    if (st == KWS_OK) {
        kws_tensor *in = kws_input(&model, 0), *out = kws_output(&model, 0);
        int hi = board_open(argv[2], 0), ho = board_open(argv[3], 1);
        if (hi < 0 || ho < 0) { board_puts("cannot open input/output file\n"); return 102; }
        while (n < max_vectors && board_read(hi, in->data, in->bytes) == (long)in->bytes) {
            uint64_t t0 = board_instructions();
            st = kws_invoke(&model);
            uint64_t dt = board_instructions() - t0;
            if (st != KWS_OK) break;
            if (n == 0) first = dt;
            total += dt;
            if (board_write(ho, out->data, out->bytes) != (long)out->bytes) { board_puts("output write failed\n"); return 102; }
            n++;
        }
        board_close(hi);
        board_close(ho);
    }
    kws_put_u64("KWS status=", (uint64_t)st);
    kws_put_u64(" inferences=", n);
    kws_put_u64(" instr_first=", first);
    kws_put_u64(" instr_total=", total);
    kws_put_u64(" arena=", kws_arena_used(&model));
    kws_put_u64(" stack=", board_stack_used());
    kws_put_u64(" model=", (uint64_t)size);
    kws_put_i64(" op=", model.error_op);
    kws_put_i64(" tensor=", model.error_tensor);
    board_puts(" kernel=");
    board_puts(kws_kernel_isa());
    kws_put_u64(" opt_ops=", model.num_opt_ops);
    board_puts("\n");
    if (st != KWS_OK) {
        board_puts("KWS error: ");
        board_puts(kws_strerror(st));
        board_puts(": ");
        board_puts(kws_model_error(&model));
        board_puts("\n");
    }
    return (int)st;
}
