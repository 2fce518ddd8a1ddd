/* kws_detect.c - posterior smoothing, threshold and refractory period (see kws_detect.h). */
#include <math.h>
#include "kws_detect.h"

int kws_detector_init(kws_detector *d, int smoothing, double threshold, double refractory_s)
{
    if (!d || smoothing < 1 || smoothing > KWS_DET_MAX_SMOOTH || !(refractory_s >= 0.0)) return -1;
    *d = (kws_detector){0};
    d->smoothing = smoothing;
    d->threshold = threshold;
    d->refractory_s = refractory_s;
    return 0;
}

double kws_keyword_posterior(const int8_t *logits, int n_classes, float scale, int32_t zero_point, int cls)
{
    double z[16], mx = -HUGE_VAL, sum = 0.0;
    if (n_classes > 16) n_classes = 16;
    for (int i = 0; i < n_classes; i++) {
        float f = (float)((int32_t)logits[i] - zero_point) * scale; /* float32, as dequantize_output */
        z[i] = (double)f;
        if (z[i] > mx) mx = z[i];
    }
    for (int i = 0; i < n_classes; i++) {
        z[i] = exp(z[i] - mx);
        sum += z[i];
    }
    return z[cls] / sum;
}

int kws_detector_push(kws_detector *d, double posterior, double time_s)
{
    uint32_t i = d->decisions++;               /* this is cumulative-sum index i + 1 */
    uint32_t n = (uint32_t)d->smoothing, ring = n + 1;
    if (i == 0) d->hist[0] = 0.0;              /* c[0] = 0 */
    d->csum += posterior;
    d->hist[(i + 1) % ring] = d->csum;
    uint32_t idx = i + 1, lo = idx > n ? idx - n : 0;
    d->smoothed = n <= 1 ? posterior : (d->csum - d->hist[lo % ring]) / (double)(idx - lo);
    if (d->smoothed >= d->threshold && (!d->fired || time_s >= d->last_time + d->refractory_s)) {
        d->fired = 1;
        d->last_time = time_s;
        return 1;
    }
    return 0;
}
