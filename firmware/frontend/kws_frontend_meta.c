/* kws_frontend_meta.c - the front end's parameters from the .tflite "subkws" metadata JSON
 * (docs/formats.md section 4): features.normalization.mean/std (64 each), context_frames,
 * context_stride, sample_rate, num_mel_bins, and the keyword label.
 *
 * A small JSON reader, enough for the converter's own output: it finds keys by their quoted
 * name inside the enclosing object's text and parses numbers as mantissa (up to 19 digits) and a
 * power of ten in double, which is the correctly rounded double (as Python's float()) whenever the
 * mantissa is below 2^53 and the power of ten is at most 22 (every value json.dumps writes with
 * up to 15-16 significant digits); 17-digit mantissas can be 1 ulp of double off, which changes
 * the float32 value only if it sits within that of a float32 rounding midpoint. */
#include <string.h>
#include "kws_frontend.h"
#include "kws_fb.h"

enum { MODEL_BUFFERS = 4, MODEL_METADATA = 6, META_NAME = 0, META_BUFFER = 1, BUF_DATA = 0 };

typedef struct { const char *p, *end; } span_t;

static int is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && is_space(*p)) p++;
    return p;
}

/* end of the JSON value starting at p (object, array, string or scalar), or NULL */
static const char *value_end(const char *p, const char *end)
{
    if (p >= end) return NULL;
    if (*p == '"') {
        for (p++; p < end; p++) {
            if (*p == '\\') p++;
            else if (*p == '"') return p + 1;
        }
        return NULL;
    }
    if (*p == '{' || *p == '[') {
        int depth = 0;
        for (; p < end; p++) {
            if (*p == '"') {
                p = value_end(p, end);
                if (!p) return NULL;
                p--;
            } else if (*p == '{' || *p == '[') depth++;
            else if (*p == '}' || *p == ']') {
                if (--depth == 0) return p + 1;
            }
        }
        return NULL;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']' && !is_space(*p)) p++;
    return p;
}

/* value of "key" among the members of the object s (top level of s only) */
static int member(span_t s, const char *key, span_t *out)
{
    const char *p = skip_ws(s.p, s.end);
    if (p >= s.end || *p != '{') return -1;
    size_t klen = strlen(key);
    p++;
    for (;;) {
        p = skip_ws(p, s.end);
        if (p >= s.end || *p != '"') return -1;
        const char *k = p + 1, *kend = value_end(p, s.end);
        if (!kend) return -1;
        p = skip_ws(kend, s.end);
        if (p >= s.end || *p != ':') return -1;
        p = skip_ws(p + 1, s.end);
        const char *vend = value_end(p, s.end);
        if (!vend) return -1;
        if ((size_t)(kend - 1 - k) == klen && memcmp(k, key, klen) == 0) {
            out->p = p;
            out->end = vend;
            return 0;
        }
        p = skip_ws(vend, s.end);
        if (p < s.end && *p == ',') { p++; continue; }
        return -1;
    }
}

static const double pow10_exact[23] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                                       1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* one JSON number at *pp; advances *pp; 0 ok */
static int parse_number(const char **pp, const char *end, double *out)
{
    const char *p = *pp;
    int neg = 0, digits = 0, exp10 = 0;
    uint64_t mant = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    for (; p < end && *p >= '0' && *p <= '9'; p++, digits++) {
        if (mant < 1000000000000000000ull) mant = mant * 10 + (uint64_t)(*p - '0');
        else exp10++;
    }
    if (p < end && *p == '.') {
        for (p++; p < end && *p >= '0' && *p <= '9'; p++, digits++)
            if (mant < 1000000000000000000ull) { mant = mant * 10 + (uint64_t)(*p - '0'); exp10--; }
    }
    if (!digits) return -1;
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0, e = 0, ed = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        for (; p < end && *p >= '0' && *p <= '9'; p++, ed++)
            if (e < 10000) e = e * 10 + (*p - '0');
        if (!ed) return -1;
        exp10 += eneg ? -e : e;
    }
    double v = (double)mant;
    while (exp10 > 22) { v *= 1e22; exp10 -= 22; }
    while (exp10 < -22) { v /= 1e22; exp10 += 22; }
    v = exp10 >= 0 ? v * pow10_exact[exp10] : v / pow10_exact[-exp10];
    *out = neg ? -v : v;
    *pp = p;
    return 0;
}

static int number_member(span_t obj, const char *key, double *out)
{
    span_t v;
    if (member(obj, key, &v)) return -1;
    const char *p = v.p;
    return parse_number(&p, v.end, out) || p != v.end ? -1 : 0;
}

static int float_array(span_t arr, float *dst, int n)
{
    const char *p = skip_ws(arr.p, arr.end);
    if (p >= arr.end || *p != '[') return -1;
    p++;
    for (int i = 0; i < n; i++) {
        double d;
        p = skip_ws(p, arr.end);
        if (parse_number(&p, arr.end, &d)) return -1;
        dst[i] = (float)d;
        p = skip_ws(p, arr.end);
        if (i + 1 < n) {
            if (p >= arr.end || *p != ',') return -1;
            p++;
        }
    }
    return p < arr.end && *p == ']' ? 0 : -1;
}

static const char *find_json(const uint8_t *fb, size_t len, span_t *json)
{
    kws_fb_table root, meta, buf;
    kws_fb_vec metas, bufs, name, data;
    if (kws_fb_root(fb, len, "TFL3", &root)) return "not a .tflite file";
    if (kws_fb_vector(&root, MODEL_METADATA, 4, &metas) != 0 || kws_fb_vector(&root, MODEL_BUFFERS, 4, &bufs) != 0)
        return "model has no metadata (convert it with tflm_port.convert)";
    for (uint32_t i = 0; i < metas.count; i++) {
        if (kws_fb_vec_table(&root, &metas, i, &meta) || kws_fb_vector(&meta, META_NAME, 1, &name) != 0) continue;
        if (name.count != 6 || memcmp(fb + name.pos, "subkws", 6) != 0) continue;
        uint32_t bi = kws_fb_u32(&meta, META_BUFFER, 0xFFFFFFFFu);
        if (bi >= bufs.count || kws_fb_vec_table(&root, &bufs, bi, &buf) || kws_fb_vector(&buf, BUF_DATA, 1, &data) != 0)
            return "subkws metadata buffer is broken";
        json->p = (const char *)fb + data.pos;
        json->end = json->p + data.count;
        return NULL;
    }
    return "model has no \"subkws\" metadata (convert it with tflm_port.convert)";
}

const char *kws_fe_config_from_tflite(const uint8_t *tflite, size_t len, kws_fe_config *cfg,
                                      int keyword_class, char *keyword, size_t keyword_len)
{
    span_t json, feats, norm, arr, labels;
    const char *err = find_json(tflite, len, &json);
    if (err) return err;
    if (member(json, "features", &feats)) return "metadata has no \"features\"";
    double v;
    if (number_member(feats, "sample_rate", &v) == 0 && v != KWS_FE_SAMPLE_RATE)
        return "model expects a sample rate other than 16000 Hz";
    if (number_member(feats, "num_mel_bins", &v) == 0 && v != KWS_FE_BINS) return "model expects other than 64 mel bins";
    if (number_member(feats, "hop_ms", &v) == 0 && v != 10.0) return "model expects a hop other than 10 ms";
    if (number_member(feats, "window_ms", &v) == 0 && v != 25.0) return "model expects a window other than 25 ms";
    if (number_member(feats, "context_frames", &v) || !(v >= 1 && v <= 1000)) return "metadata: bad features.context_frames";
    cfg->context = (uint16_t)v;
    if (number_member(feats, "context_stride", &v) || !(v >= 1 && v <= 1000)) return "metadata: bad features.context_stride";
    cfg->stride = (uint16_t)v;
    if (member(feats, "normalization", &norm)) return "metadata has no features.normalization (mean/std)";
    if (member(norm, "mean", &arr) || float_array(arr, cfg->mean, KWS_FE_BINS))
        return "metadata: features.normalization.mean is not 64 numbers";
    if (member(norm, "std", &arr) || float_array(arr, cfg->std, KWS_FE_BINS))
        return "metadata: features.normalization.std is not 64 numbers";
    if (keyword && keyword_len) {
        keyword[0] = 0;
        if (member(json, "labels", &labels)) return "metadata has no \"labels\"";
        const char *p = skip_ws(labels.p, labels.end);
        if (p >= labels.end || *p != '[') return "metadata: labels is not a list";
        p++;
        for (int i = 0;; i++) {
            p = skip_ws(p, labels.end);
            const char *e = value_end(p, labels.end);
            if (!e || *p != '"') return "metadata: labels has no entry for the keyword class";
            if (i == keyword_class) {
                size_t n = (size_t)(e - p - 2);
                if (n > keyword_len - 1) n = keyword_len - 1;
                memcpy(keyword, p + 1, n);
                keyword[n] = 0;
                break;
            }
            p = skip_ws(e, labels.end);
            if (p >= labels.end || *p != ',') return "metadata: labels has no entry for the keyword class";
            p++;
        }
    }
    return NULL;
}
