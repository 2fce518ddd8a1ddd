/* kws_frontend.h - streaming 64-bin LFBE front end (the features of training/features.py).
 *
 * Audio arrives as 160 int16 samples per 10 ms hop (16 kHz mono). The front end keeps the two
 * previous hops; after hop h >= 2 it computes frame t = h - 2 (samples [160 t, 160 t + 400): hops
 * h - 2, h - 1 and the first 80 samples of hop h): periodic Hann window, 512-point real FFT (a
 * 256-point complex radix-2 FFT of the even/odd packed frame plus a split step), power spectrum,
 * 64 HTK-mel triangles, ln(E + 1e-6), all in float32. Each frame is then normalized with the model's
 * per-bin mean/std and quantized to the model's int8 input (round half away from zero, clamp) into a
 * ring of the last `span` frames, span = (context - 1) * stride + 1 (70 for 24 frames at stride 3).
 * A context window (frames t - span + 1, ..., t, every stride-th, oldest first, frame-major) is then
 * one copy of `context` rows of 64 bytes: exactly training.features.stack_context of the quantized
 * frames.
 *
 * The FFT and power spectrum of a frame need a 2 KB work area (kws_fe_work) only while
 * kws_frontend_push runs: the caller passes it, so it can share memory that is idle then (kws_stream
 * uses the model arena's scratch and activations between invocations: kws_arena_temp).
 *
 * training/frontend_mirror.py repeats this arithmetic bit for bit in numpy.
 *
 *   kws_frontend fe;
 *   kws_fe_work work;   (or any suitably aligned idle memory of sizeof(kws_fe_work) bytes)
 *   kws_frontend_init(&fe, &cfg);
 *   for each hop: if (kws_frontend_push(&fe, hop, &work) && kws_frontend_window_ready(&fe))
 *                     kws_frontend_window(&fe, input_tensor_data);
 */
#ifndef KWS_FRONTEND_H
#define KWS_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

#define KWS_FE_SAMPLE_RATE 16000
#define KWS_FE_HOP 160
#define KWS_FE_WINDOW 400
#define KWS_FE_BINS 64
#define KWS_FE_FFT 256            /* complex points (512 real) */
#define KWS_FE_POWER_BINS 257
#ifndef KWS_FE_MAX_SPAN
#define KWS_FE_MAX_SPAN 80        /* frames the quantized-frame ring can hold (compile-time) */
#endif

typedef struct {
    float mean[KWS_FE_BINS];      /* per-bin normalization (model metadata) */
    float std[KWS_FE_BINS];
    float in_scale;               /* model input quantization */
    int32_t in_zero_point;
    uint16_t context;             /* frames per window (24) */
    uint16_t stride;              /* frames between stacked frames (3) */
} kws_fe_config;

/* FFT work area of one frame: z[0..255] real, z[256..511] imaginary parts; the power spectrum then
 * overwrites z[0..256] in place */
typedef struct {
    float z[2 * KWS_FE_FFT];
} kws_fe_work;

typedef struct {
    kws_fe_config cfg;
    uint16_t span;                /* (context - 1) * stride + 1 */
    uint32_t hops;                /* hops pushed so far */
    uint32_t frames;              /* frames computed so far */
    int16_t audio[2 * KWS_FE_HOP];/* the two previous hops, slot = hop % 2 */
    float lfbe[KWS_FE_BINS];      /* the latest frame's log-mel energies */
    int8_t ring[KWS_FE_MAX_SPAN][KWS_FE_BINS]; /* quantized frames, slot = frame % span */
} kws_frontend;

/* 0 ok; -1 bad config (context/stride zero, span > KWS_FE_MAX_SPAN, std <= 0, scale <= 0) */
int kws_frontend_init(kws_frontend *fe, const kws_fe_config *cfg);
/* Push the next 160 samples (copied: hop may be reused once this returns); work is scratch for the
 * call. Returns 1 when a new frame was computed (fe->lfbe and the ring hold it), 0 during the first
 * two hops. */
int kws_frontend_push(kws_frontend *fe, const int16_t *hop, kws_fe_work *work);
/* 1 once `span` frames exist: a context window ends at the newest frame. */
int kws_frontend_window_ready(const kws_frontend *fe);
/* context * 64 int8 model input of the window ending at the newest frame. */
void kws_frontend_window(const kws_frontend *fe, int8_t *dst);
/* The newest frame's quantized row (64 int8). */
const int8_t *kws_frontend_frame_q(const kws_frontend *fe);
/* One past the last sample the newest frame covers: 160 t + 400 (time = that / 16000 s). */
uint32_t kws_frontend_frame_end(const kws_frontend *fe);

/* Building blocks (also used by the tests and benchmarks). */
/* log-mel of one 400-sample frame given as 160 + 160 + 80 samples (a, b, first 80 of c) -> fe->lfbe */
void kws_lfbe_frame(kws_frontend *fe, kws_fe_work *work, const int16_t *a, const int16_t *b, const int16_t *c);
void kws_fft256(float *re, float *im);            /* in place, in-order input and output */
float kws_log_f32(float x);                       /* x > 0, normal */
int8_t kws_quantize_feature(float x, float mean, float std, float scale, int32_t zero_point);

/* Fills cfg->mean/std/context/stride from the .tflite "subkws" metadata JSON (in_scale and
 * in_zero_point come from the model's input tensor: set them yourself). keyword receives
 * labels[keyword_class] (NUL-terminated, truncated to keyword_len - 1). Returns NULL on
 * success or a static message saying what is missing. */
const char *kws_fe_config_from_tflite(const uint8_t *tflite, size_t len, kws_fe_config *cfg,
                                      int keyword_class, char *keyword, size_t keyword_len);

#endif
