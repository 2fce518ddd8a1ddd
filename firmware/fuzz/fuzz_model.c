/* fuzz_model.c - libFuzzer harness: one input = one .tflite file, run through everything the
 * firmware does with an untrusted model: kws_model_init (flatbuffer reader, validation, planning,
 * every op's prepare), kws_invoke on input bytes taken from the file itself, the streaming front
 * end's configuration from the "subkws" metadata, and a few hops of audio through the front end
 * into the model, as kws_stream does.
 *
 * The input is copied into a heap buffer of exactly its size, so AddressSanitizer reports any
 * read past the end of the model. Built by firmware/fuzz/fuzz.mk with clang
 * -fsanitize=fuzzer,address,undefined,float-cast-overflow; run with `make fuzz FUZZ_SECONDS=N`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kws.h"
#include "kws_frontend.h"

#define FUZZ_ARENA (256 * 1024)

static _Alignas(16) uint8_t arena[FUZZ_ARENA];
static kws_model model;
static kws_frontend fe;
static kws_fe_work fe_work;

/* deterministic input bytes for the model: the file's own bytes, repeated */
static void fill_input(kws_tensor *t, const uint8_t *data, size_t size)
{
    uint8_t *dst = (uint8_t *)t->data;
    if (!dst) return;
    for (uint32_t i = 0; i < t->bytes; i++) dst[i] = size ? data[(i * 7u) % size] : (uint8_t)i;
    if (t->type == KWS_FLOAT32) { /* keep float inputs finite: NaN/Inf are not what a front end gives */
        float *f = (float *)t->data;
        for (uint32_t i = 0; i < t->elements; i++) f[i] = (float)((int)dst[4 * i] - 128) * 0.05f;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = (uint8_t *)malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);

    if (kws_model_init(&model, buf, size, arena, sizeof arena) == KWS_OK) {
        kws_tensor *in = kws_input(&model, 0), *out = kws_output(&model, 0);
        if (in && out) {
            fill_input(in, buf, size);
            (void)kws_invoke(&model);

            kws_fe_config cfg;
            char keyword[32];
            if (!kws_fe_config_from_tflite(buf, size, &cfg, 2, keyword, sizeof keyword) && in->type == KWS_INT8 &&
                in->elements == (uint32_t)cfg.context * KWS_FE_BINS) {
                cfg.in_scale = in->scale;
                cfg.in_zero_point = in->zero_point;
                if (!kws_frontend_init(&fe, &cfg)) {
                    int16_t hop[KWS_FE_HOP];
                    for (int h = 0; h < 2 + (int)cfg.context * (int)cfg.stride + 1 && h < 64; h++) {
                        for (int i = 0; i < KWS_FE_HOP; i++)
                            hop[i] = (int16_t)((size ? buf[(size_t)(h * KWS_FE_HOP + i) % size] : 0) * 129 - 16384);
                        if (kws_frontend_push(&fe, hop, &fe_work) && kws_frontend_window_ready(&fe)) {
                            kws_frontend_window(&fe, (int8_t *)in->data);
                            (void)kws_invoke(&model);
                        }
                    }
                }
            }
        }
    } else {
        /* the metadata reader is independent of the graph: exercise it on rejected models too */
        kws_fe_config cfg;
        char keyword[32];
        (void)kws_fe_config_from_tflite(buf, size, &cfg, 2, keyword, sizeof keyword);
    }
    free(buf);
    return 0;
}
