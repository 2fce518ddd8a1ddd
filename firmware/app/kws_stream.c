/* kws_stream: audio in, detections out - the whole on-device loop.
 *
 *   kws_stream <model.tflite> <audio.wav> [-t threshold] [-s smoothing_frames] [-r refractory_s]
 *              [-f frames.bin] [-p decisions.bin] [-q]
 *
 * The model (int8 in/out, "subkws" metadata with the feature normalization) and the audio
 * (WAV, 16 kHz mono 16-bit PCM) are read through the board's files (semihosting on the
 * emulated Cortex-M boards; linked into flash on the UART images, boards.mk, where the model is
 * used in place), the audio in chunks, so any length works. Every 160 samples (one
 * 10 ms hop) the front end computes a frame; once 70 frames (24 at stride 3) exist, every hop
 * runs the model on the latest window and the detector on its keyword posterior. An audio
 * stream that ends mid-hop drops the partial hop (at most 159 samples, < 10 ms).
 *
 * Output, one line per detection and a summary:
 *   DET end_sample=<n> time_s=<s.sss> keyword=<label> score=<smoothed posterior>
 *   STREAM status=<n> hops=<n> frames=<n> decisions=<n> detections=<n> fe_instr=<n> loop_instr=<n>
 *          fe_max=<n> loop_max=<n> arena=<bytes> stack=<bytes> state=<bytes> model=<bytes>
 * arena = the model arena used + the front end's work area when it does not fit in the model's idle
 * temporaries (kws_arena_temp; 0 extra for the FFNN models): the arena size the image needs.
 * fe_instr / loop_instr are summed over all hops (front end alone / front end + window + model +
 * detection); the instruction counter's own cost is measured at start and subtracted.
 * -f writes per frame 64 float32 log-mel values then the 64 int8 model-input values;
 * -p writes per decision the int8 logits (output size), then double posterior, double smoothed.
 * -q prints only the summary. Exit status 0, or a kws_status / 100+ for app errors. */
#include <string.h>
#include "kws.h"
#include "kws_board.h"
#include "kws_console.h"
#include "kws_frontend.h"
#include "kws_detect.h"

#ifndef KWS_MODEL_MAX
#define KWS_MODEL_MAX (1280 * 1024)
#endif
#ifndef KWS_ARENA_SIZE
#define KWS_ARENA_SIZE (256 * 1024)
#endif
#define CHUNK_HOPS 1 /* audio read per step: one hop (a microphone driver would hand over one DMA half) */

#if defined(__arm__)
#define BIG __attribute__((section(".bigbss"), aligned(16)))
#else
#define BIG __attribute__((aligned(16)))
#endif

static uint8_t model_buf[KWS_MODEL_MAX] BIG;
static uint8_t arena[KWS_ARENA_SIZE] BIG;
static kws_model model;
static kws_frontend fe;
static kws_detector det;
static int16_t chunk[CHUNK_HOPS * KWS_FE_HOP];
static char keyword[32];

/* v >= 0 with `decimals` digits after the point, rounded half up */
static void put_fixed(const char *label, double v, int decimals)
{
    uint64_t scale = 1;
    for (int i = 0; i < decimals; i++) scale *= 10;
    uint64_t x = (uint64_t)(v * (double)scale + 0.5);
    kws_put_u64(label, x / scale);
    char frac[24];
    uint64_t f = x % scale;
    for (int i = decimals - 1; i >= 0; i--) { frac[i] = (char)('0' + f % 10); f /= 10; }
    frac[decimals] = 0;
    board_puts(".");
    board_puts(frac);
}

static int parse_double(const char *s, double *out)
{
    /* decimal d.ddd only (no exponent): threshold and times */
    double v = 0.0, scale = 1.0;
    int digits = 0, frac = 0;
    uint64_t mant = 0;
    for (; *s; s++) {
        if (*s == '.' && !frac) { frac = 1; continue; }
        if (*s < '0' || *s > '9' || digits >= 18) return -1;
        mant = mant * 10 + (uint64_t)(*s - '0');
        digits++;
        if (frac) scale *= 10.0;
    }
    if (!digits) return -1;
    v = (double)mant / scale; /* correctly rounded for mantissas < 2^53: equals Python float(s) */
    *out = v;
    return 0;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* Walks the RIFF chunks up to "data"; checks PCM 16-bit mono 16 kHz. Returns the data bytes
 * (the file position is then at the first sample), or -1 with *err set. */
static long wav_open_data(int h, const char **err)
{
    uint8_t hdr[12], ck[8], fmt[40];
    int have_fmt = 0;
    if (board_read(h, hdr, 12) != 12 || memcmp(hdr, "RIFF", 4) || memcmp(hdr + 8, "WAVE", 4)) {
        *err = "audio is not a RIFF/WAVE file";
        return -1;
    }
    for (;;) {
        if (board_read(h, ck, 8) != 8) { *err = "WAV file has no data chunk"; return -1; }
        uint32_t n = rd32(ck + 4);
        if (!memcmp(ck, "data", 4)) {
            if (!have_fmt) { *err = "WAV data chunk before fmt chunk"; return -1; }
            return (long)n;
        }
        if (!memcmp(ck, "fmt ", 4)) {
            if (n < 16 || n > sizeof fmt || board_read(h, fmt, n) != (long)n) { *err = "WAV fmt chunk broken"; return -1; }
            uint16_t tag = rd16(fmt);
            if (tag == 0xFFFE && n >= 26) tag = rd16(fmt + 24); /* WAVE_FORMAT_EXTENSIBLE: sub-format GUID */
            if (tag != 1 || rd16(fmt + 2) != 1 || rd32(fmt + 4) != KWS_FE_SAMPLE_RATE || rd16(fmt + 14) != 16) {
                *err = "audio must be 16 kHz mono 16-bit PCM WAV";
                return -1;
            }
            if (n & 1) board_read(h, fmt, 1);
            have_fmt = 1;
            continue;
        }
        for (uint32_t left = n + (n & 1); left;) { /* skip the chunk */
            uint32_t k = left < sizeof fmt ? left : (uint32_t)sizeof fmt;
            if (board_read(h, fmt, k) != (long)k) { *err = "WAV file truncated"; return -1; }
            left -= k;
        }
    }
}

static int fail(const char *msg, int code)
{
    board_puts("kws_stream error: ");
    board_puts(msg);
    board_puts("\n");
    return code;
}

int main(int argc, char **argv)
{
    board_init(&argc, &argv);
    if (argc < 3)
        return fail("usage: kws_stream model.tflite audio.wav [-t threshold] [-s smoothing] [-r refractory_s] "
                    "[-f frames.bin] [-p decisions.bin] [-q]", 101);
    double threshold = 0.5, refractory = 1.0, smoothing = 10.0;
    const char *frames_path = NULL, *dec_path = NULL;
    int quiet = 0;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-q")) { quiet = 1; continue; }
        if (i + 1 >= argc) return fail("option needs a value", 101);
        const char *v = argv[++i];
        if (!strcmp(a, "-t")) { if (parse_double(v, &threshold)) return fail("bad -t", 101); }
        else if (!strcmp(a, "-r")) { if (parse_double(v, &refractory)) return fail("bad -r", 101); }
        else if (!strcmp(a, "-s")) { if (parse_double(v, &smoothing)) return fail("bad -s", 101); }
        else if (!strcmp(a, "-f")) frames_path = v;
        else if (!strcmp(a, "-p")) dec_path = v;
        else return fail("unknown option", 101);
    }

    int h = board_open(argv[1], 0);
    if (h < 0) return fail("cannot open model", 102);
    long size = board_file_size(h);
    /* a board that links its files into flash maps the model in place; otherwise read it into RAM */
    const uint8_t *model_data = board_file_data(h);
    if (!model_data) {
        if (size < 0) return fail("cannot read the model file size", 102);
        if (size == 0) return fail("model file is empty (0 bytes)", 103);
        if (size > (long)sizeof model_buf) return fail("model too large for KWS_MODEL_MAX", 103);
        if (board_read(h, model_buf, (size_t)size) != size) return fail("model read failed", 102);
        model_data = model_buf;
    }
    board_close(h);

    kws_status st = kws_model_init(&model, model_data, (size_t)size, arena, sizeof arena);
    if (st != KWS_OK) {
        board_puts("KWS error: ");
        board_puts(kws_strerror(st));
        board_puts(": ");
        board_puts(kws_model_error(&model));
        board_puts("\n");
        return (int)st;
    }
    kws_tensor *in = kws_input(&model, 0), *out = kws_output(&model, 0);
    kws_fe_config cfg;
    const char *err = kws_fe_config_from_tflite(model_data, (size_t)size, &cfg, KWS_DET_KEYWORD_CLASS, keyword, sizeof keyword);
    if (err) return fail(err, 104);
    if (in->type != KWS_INT8 || out->type != KWS_INT8) return fail("model input and output must be int8", 104);
    if (in->elements != (uint32_t)cfg.context * KWS_FE_BINS) return fail("model input size != context_frames * 64", 104);
    if (out->elements <= KWS_DET_KEYWORD_CLASS || out->elements > 16) return fail("model output must have 3..16 classes", 104);
    cfg.in_scale = in->scale;
    cfg.in_zero_point = in->zero_point;
    if (kws_frontend_init(&fe, &cfg)) return fail("front end config rejected (span > KWS_FE_MAX_SPAN or bad std/scale)", 104);
    /* the front end's FFT work area: the model's scratch + activations, idle while the front end runs
     * (the window is written into the input tensor after kws_frontend_push, the output is read before
     * the next hop); else the arena bytes after the model's (the model allocates only during init) */
    size_t temp_bytes;
    uint8_t *temp = kws_arena_temp(&model, &temp_bytes);
    size_t work_own = 0;
    kws_fe_work *work = (kws_fe_work *)(void *)temp;
    if (!temp || temp_bytes < sizeof(kws_fe_work) || ((uintptr_t)temp & 3u)) {
        size_t used = (kws_arena_used(&model) + 15u) & ~(size_t)15u;
        if (used > model.arena_len || model.arena_len - used < sizeof(kws_fe_work))
            return fail("arena too small for the front end's work area (2 KB after the model's arena)", 104);
        work = (kws_fe_work *)(void *)(model.arena + used);
        work_own = (used - kws_arena_used(&model)) + sizeof(kws_fe_work);
    }
    /* range-check before the conversion: (int) of a double beyond INT_MAX is undefined behaviour */
    if (!(smoothing >= 1.0 && smoothing <= (double)KWS_DET_MAX_SMOOTH) || smoothing != (double)(int)smoothing)
        return fail("bad -s: smoothing must be a whole number of decisions in 1..KWS_DET_MAX_SMOOTH", 101);
    if (kws_detector_init(&det, (int)smoothing, threshold, refractory)) return fail("bad detector settings", 101);

    int ha = board_open(argv[2], 0);
    if (ha < 0) return fail("cannot open audio", 102);
    long data_bytes = wav_open_data(ha, &err);
    if (data_bytes < 0) return fail(err, 105);
    int hf = frames_path ? board_open(frames_path, 1) : -1, hp = dec_path ? board_open(dec_path, 1) : -1;
    if ((frames_path && hf < 0) || (dec_path && hp < 0)) return fail("cannot open output file", 102);

    /* cost of one board_instructions() call, subtracted from each measured interval */
    uint64_t c0 = board_instructions(), c1 = board_instructions();
    for (int i = 0; i < 7; i++) c1 = board_instructions();
    uint64_t overhead = (c1 - c0) / 8;

    uint64_t hops = 0, decisions = 0, detections = 0, fe_sum = 0, loop_sum = 0, fe_max = 0, loop_max = 0;
    long left = data_bytes;
    size_t have_bytes = 0; /* bytes in chunk */
    for (;;) {
        size_t want = sizeof chunk - have_bytes;
        if ((long)want > left) want = (size_t)left;
        long got = want ? board_read(ha, (uint8_t *)chunk + have_bytes, want) : 0;
        if (got < 0) return fail("audio read failed", 102);
        left -= got;
        have_bytes += (size_t)got;
        size_t have = have_bytes / sizeof(int16_t);
        if (have < KWS_FE_HOP) {
            if (got == 0) break; /* end of stream: a partial hop (and an odd trailing byte) is dropped */
            continue;
        }
        size_t used = 0;
        for (; have - used >= KWS_FE_HOP; used += KWS_FE_HOP) {
            uint64_t t0 = board_instructions();
            int new_frame = kws_frontend_push(&fe, chunk + used, work);
            uint64_t t1 = board_instructions();
            int fired = 0;
            double post = 0.0;
            if (new_frame && kws_frontend_window_ready(&fe)) {
                kws_frontend_window(&fe, (int8_t *)in->data);
                st = kws_invoke(&model);
                if (st != KWS_OK) return fail(kws_model_error(&model), (int)st);
                post = kws_keyword_posterior((const int8_t *)out->data, (int)out->elements, out->scale, out->zero_point,
                                             KWS_DET_KEYWORD_CLASS);
                fired = kws_detector_push(&det, post, (double)kws_frontend_frame_end(&fe) / (double)KWS_FE_SAMPLE_RATE);
                decisions++;
            }
            uint64_t t2 = board_instructions();
            uint64_t dfe = t1 - t0 > overhead ? t1 - t0 - overhead : 0;
            uint64_t dall = t2 - t0 > 2 * overhead ? t2 - t0 - 2 * overhead : 0;
            fe_sum += dfe;
            loop_sum += dall;
            if (dfe > fe_max) fe_max = dfe;
            if (dall > loop_max) loop_max = dall;
            hops++;
            if (new_frame && hf >= 0) {
                if (board_write(hf, fe.lfbe, sizeof fe.lfbe) != (long)sizeof fe.lfbe ||
                    board_write(hf, kws_frontend_frame_q(&fe), KWS_FE_BINS) != KWS_FE_BINS)
                    return fail("frames write failed", 102);
            }
            if (new_frame && kws_frontend_window_ready(&fe) && hp >= 0) {
                if (board_write(hp, out->data, out->elements) != (long)out->elements ||
                    board_write(hp, &post, sizeof post) != (long)sizeof post ||
                    board_write(hp, &det.smoothed, sizeof det.smoothed) != (long)sizeof det.smoothed)
                    return fail("decisions write failed", 102);
            }
            if (fired) {
                detections++;
                if (!quiet) {
                    uint32_t end = kws_frontend_frame_end(&fe);
                    kws_put_u64("DET end_sample=", end);
                    put_fixed(" time_s=", (double)end / KWS_FE_SAMPLE_RATE, 3);
                    board_puts(" keyword=");
                    board_puts(keyword);
                    put_fixed(" score=", det.smoothed, 6);
                    board_puts("\n");
                }
            }
        }
        memmove(chunk, (uint8_t *)chunk + used * sizeof(int16_t), have_bytes - used * sizeof(int16_t));
        have_bytes -= used * sizeof(int16_t);
    }
    board_close(ha);
    if (hf >= 0) board_close(hf);
    if (hp >= 0) board_close(hp);
    kws_put_u64("STREAM status=", 0);
    kws_put_u64(" hops=", hops);
    kws_put_u64(" frames=", fe.frames);
    kws_put_u64(" decisions=", decisions);
    kws_put_u64(" detections=", detections);
    kws_put_u64(" fe_instr=", fe_sum);
    kws_put_u64(" loop_instr=", loop_sum);
    kws_put_u64(" fe_max=", fe_max);
    kws_put_u64(" loop_max=", loop_max);
    kws_put_u64(" arena=", kws_arena_used(&model) + work_own);
    kws_put_u64(" stack=", board_stack_used());
    kws_put_u64(" state=", sizeof fe + sizeof det + sizeof chunk + sizeof model + work_own);
    kws_put_u64(" model=", (uint64_t)size);
    board_puts("\n");
    return 0;
}
