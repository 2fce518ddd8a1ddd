/* kws_detect.h - the streaming detection rule of training/evaluate.py, on the device.
 *
 * Every decision (one per 10 ms hop once a context window exists):
 * 1. keyword posterior p = softmax(dequantized logits)[keyword_class]: logits are dequantized in
 *    float32, (float)(q - zero_point) * scale, and the softmax is computed in double, as
 *    training.evaluate.tflite_scorer does (float32 dequantize, float64 softmax);
 * 2. smoothed = causal moving average of the last `smoothing` posteriors (fewer at the start),
 *    computed like evaluate.smooth: a running double cumulative sum c, (c[i] - c[i-n]) / n;
 * 3. fire when smoothed >= threshold and no detection fired in the last refractory_s seconds
 *    (time >= last detection time + refractory_s), time = end of the audio the decision saw.
 * Only exp() may differ from numpy's in the last bit of a double, so a smoothed posterior can
 * differ from the Python one by ~1e-16: a threshold within that of a smoothed value is the only
 * way the two can disagree. */
#ifndef KWS_DETECT_H
#define KWS_DETECT_H

#include <stdint.h>

#ifndef KWS_DET_MAX_SMOOTH
#define KWS_DET_MAX_SMOOTH 64
#endif
#define KWS_DET_KEYWORD_CLASS 2   /* basics.classes.KEYWORD_CLASS (tests/test_architecture.py checks) */

typedef struct {
    int smoothing;
    double threshold, refractory_s;
    double csum;                                /* sum of all posteriors so far */
    double hist[KWS_DET_MAX_SMOOTH + 1];        /* csum after decision i at slot i % (smoothing + 1) */
    uint32_t decisions;
    int fired;
    double last_time;
    double smoothed;                            /* of the latest decision */
} kws_detector;

/* 0 ok; -1 bad arguments (smoothing outside 1..KWS_DET_MAX_SMOOTH, negative refractory) */
int kws_detector_init(kws_detector *d, int smoothing, double threshold, double refractory_s);
/* softmax(dequantized int8 logits)[cls] */
double kws_keyword_posterior(const int8_t *logits, int n_classes, float scale, int32_t zero_point, int cls);
/* One decision; returns 1 when a detection fires at time_s (d->smoothed is its score). */
int kws_detector_push(kws_detector *d, double posterior, double time_s);

#endif
