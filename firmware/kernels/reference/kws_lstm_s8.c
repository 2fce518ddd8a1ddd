/* kws_lstm_s8.c - reference kernel of TFLite's integer UNIDIRECTIONAL_SEQUENCE_LSTM (int8 input, weights
 * and hidden state, int16 cell state with a power-of-two scale), as TFLite Micro evaluates it. The
 * arithmetic is written out in docs/formats.md section 10; tflm_port/lstm.py is the same in numpy. */
#include "kws_kernels.h"
#include "kws_lstm_arith.h"   /* sat16, sigmoid / tanh, gate activation, cell update (shared with the DSP kernel) */

/* sigmoid(k / 24) in unsigned 0.16, k = 0..255: the table TFLite's int16 LOGISTIC / TANH interpolate.
 * Values measured from TFLite Micro (tflm_port/lstm.py LUT, probe_tflm_table); a test checks both agree. */
const uint16_t kws_sigmoid_table_u16[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794,
    41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443,
    48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169, 53581, 53983, 54374,
    54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433, 57724, 58007, 58280, 58544,
    58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110, 61279,
    61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990,
    63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030,
    64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652,
    64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019,
    65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234,
    65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360,
    65367, 65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476,
    65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498, 65500, 65501,
    65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516,
    65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529,
    65529, 65530, 65530, 65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532,
    65532, 65532, 65532, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65534, 65534,
    65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535
};


KWS_NO_VECTORIZE
static void gate(const kws_lstm_params *p, int g, const int8_t *x, const int8_t *h, int16_t *out)
{
    const int8_t *w = p->w[g], *rw = p->r[g];
    for (int32_t j = 0; j < p->units; j++) {
        int32_t acc = p->b[g][j];
        for (int32_t k = 0; k < p->n_in; k++) acc += ((int32_t)x[k] - p->zp_x) * w[j * p->n_in + k];
        int32_t accr = 0;
        for (int32_t k = 0; k < p->units; k++) accr += ((int32_t)h[k] - p->zp_h) * rw[j * p->units + k];
        out[j] = kws_lstm_gate(p, g, acc, accr);
    }
}

KWS_NO_VECTORIZE
void kws_lstm_s8(const kws_lstm_params *p, int32_t steps, const int8_t *input, int8_t *h, int16_t *c,
                 int16_t *scratch, int8_t *output)
{
    const int32_t u = p->units;
    int16_t *gi = scratch, *gf = scratch + u, *gc = scratch + 2 * u, *go = scratch + 3 * u;
    for (int32_t t = 0; t < steps; t++) {
        const int8_t *x = input + t * p->n_in;
        gate(p, KWS_LSTM_GATE_F, x, h, gf);   /* every gate reads the previous hidden state */
        gate(p, KWS_LSTM_GATE_I, x, h, gi);
        gate(p, KWS_LSTM_GATE_C, x, h, gc);
        gate(p, KWS_LSTM_GATE_O, x, h, go);
        for (int32_t j = 0; j < u; j++) h[j] = kws_lstm_cell(p, gi[j], gf[j], gc[j], go[j], &c[j]);
        for (int32_t j = 0; j < u; j++) output[t * u + j] = h[j];
    }
}
