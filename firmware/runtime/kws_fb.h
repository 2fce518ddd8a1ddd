/* kws_fb.h - bounds-checked readers for FlatBuffers (the .tflite container) and FlexBuffers
 * (custom op options). Every function checks its reads against the buffer length and
 * returns 0 on success, non-zero on malformed input; nothing is trusted. Little-endian. */
#ifndef KWS_FB_H
#define KWS_FB_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *buf;
    uint32_t len;
    uint32_t pos;     /* table start */
    uint32_t vt;      /* vtable start */
    uint16_t vt_len;  /* vtable bytes */
    uint16_t obj_len; /* table inline bytes */
} kws_fb_table;

typedef struct {
    uint32_t pos;     /* first element */
    uint32_t count;
} kws_fb_vec;

static inline uint32_t kws_rd_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static inline uint16_t kws_rd_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline int32_t kws_rd_i32(const uint8_t *p) { return (int32_t)kws_rd_u32(p); }
static inline uint64_t kws_rd_u64(const uint8_t *p) { return (uint64_t)kws_rd_u32(p) | (uint64_t)kws_rd_u32(p + 4) << 32; }
static inline float kws_rd_f32(const uint8_t *p) { union { uint32_t u; float f; } c; c.u = kws_rd_u32(p); return c.f; }

int kws_fb_root(const uint8_t *buf, size_t len, const char *ident, kws_fb_table *root);
int kws_fb_table_at(const uint8_t *buf, uint32_t len, uint32_t pos, kws_fb_table *t);
/* byte position of field `id` if present and `size` bytes fit in the table, else 0 */
uint32_t kws_fb_field(const kws_fb_table *t, unsigned id, unsigned size);
uint32_t kws_fb_u32(const kws_fb_table *t, unsigned id, uint32_t dflt);
int32_t kws_fb_i32(const kws_fb_table *t, unsigned id, int32_t dflt);
uint8_t kws_fb_u8(const kws_fb_table *t, unsigned id, uint8_t dflt);
float kws_fb_f32(const kws_fb_table *t, unsigned id, float dflt);
uint64_t kws_fb_u64(const kws_fb_table *t, unsigned id, uint64_t dflt);
/* returns 1 if absent (vec zeroed), 0 if present and valid, -1 if malformed */
int kws_fb_vector(const kws_fb_table *t, unsigned id, unsigned elem_size, kws_fb_vec *v);
int kws_fb_subtable(const kws_fb_table *t, unsigned id, kws_fb_table *sub);
int kws_fb_vec_table(const kws_fb_table *parent, const kws_fb_vec *v, uint32_t i, kws_fb_table *t);

/* FlexBuffer map lookups: 0 found, 1 key absent, -1 malformed / wrong type */
int kws_flex_map_int(const uint8_t *buf, uint32_t len, const char *key, int64_t *out);
int kws_flex_map_string(const uint8_t *buf, uint32_t len, const char *key, const char **s, uint32_t *slen);
int kws_flex_is_map(const uint8_t *buf, uint32_t len);

#endif
