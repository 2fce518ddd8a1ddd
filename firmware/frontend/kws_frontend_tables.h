/* kws_frontend_tables.h - constant tables of the LFBE front end, generated into
 * kws_frontend_tables.c by `python -m firmware.tools.gen_frontend_tables --write-tables`. */
#ifndef KWS_FRONTEND_TABLES_H
#define KWS_FRONTEND_TABLES_H
#include <stdint.h>

#define KWS_FE_MEL_WEIGHTS 500

extern const float kws_fe_hann_q15[400];
extern const float kws_fe_cos[256];
extern const float kws_fe_sin[256];
extern const uint8_t kws_fe_bitrev[256];
extern const uint16_t kws_fe_mel_start[64];
extern const uint16_t kws_fe_mel_len[64];
extern const uint16_t kws_fe_mel_offset[64];
extern const float kws_fe_mel_weights[KWS_FE_MEL_WEIGHTS];
extern const float kws_fe_log_c[5];
extern const float kws_fe_ln2;
extern const float kws_fe_sqrt2;

#endif
