/* kws_fb.c - bounds-checked FlatBuffers / FlexBuffers readers (see kws_fb.h). */
#include "kws_fb.h"
#include <string.h>

static int in_range(uint32_t len, uint64_t pos, uint64_t size) { return pos <= len && size <= (uint64_t)len - pos; }

int kws_fb_table_at(const uint8_t *buf, uint32_t len, uint32_t pos, kws_fb_table *t)
{
    if (!in_range(len, pos, 4) || (pos & 3)) return -1;
    int64_t vt = (int64_t)pos - (int64_t)kws_rd_i32(buf + pos);
    if (vt < 0 || !in_range(len, (uint64_t)vt, 4) || (vt & 1)) return -1;
    uint16_t vt_len = kws_rd_u16(buf + vt), obj_len = kws_rd_u16(buf + vt + 2);
    if (vt_len < 4 || (vt_len & 1) || !in_range(len, (uint64_t)vt, vt_len)) return -1;
    if (obj_len < 4 || !in_range(len, pos, obj_len)) return -1;
    t->buf = buf; t->len = len; t->pos = pos; t->vt = (uint32_t)vt; t->vt_len = vt_len; t->obj_len = obj_len;
    return 0;
}

int kws_fb_root(const uint8_t *buf, size_t len, const char *ident, kws_fb_table *root)
{
    if (!buf || len < 12 || len > 0x7FFFFFF0u) return -1;
    if (ident && memcmp(buf + 4, ident, 4) != 0) return -2;
    return kws_fb_table_at(buf, (uint32_t)len, kws_rd_u32(buf), root);
}

uint32_t kws_fb_field(const kws_fb_table *t, unsigned id, unsigned size)
{
    uint32_t slot = 4u + 2u * id;
    if (slot + 2u > t->vt_len) return 0;
    uint16_t off = kws_rd_u16(t->buf + t->vt + slot);
    if (off == 0) return 0;
    if ((uint32_t)off + size > t->obj_len) return 0; /* field outside its table: treat as corrupt->absent? no: caller checks */
    return t->pos + off;
}

/* A field that is present in the vtable but does not fit is corruption; we flag it by returning
 * the default through kws_fb_field()==0 and let kws_fb_field_bad() report it. To keep callers
 * simple, scalar getters treat it as absent; vectors/tables report -1 (see below). */
static int field_bad(const kws_fb_table *t, unsigned id, unsigned size)
{
    uint32_t slot = 4u + 2u * id;
    if (slot + 2u > t->vt_len) return 0;
    uint16_t off = kws_rd_u16(t->buf + t->vt + slot);
    return off != 0 && (uint32_t)off + size > t->obj_len;
}

uint32_t kws_fb_u32(const kws_fb_table *t, unsigned id, uint32_t dflt)
{
    uint32_t p = kws_fb_field(t, id, 4);
    return p ? kws_rd_u32(t->buf + p) : dflt;
}
int32_t kws_fb_i32(const kws_fb_table *t, unsigned id, int32_t dflt)
{
    uint32_t p = kws_fb_field(t, id, 4);
    return p ? kws_rd_i32(t->buf + p) : dflt;
}
uint8_t kws_fb_u8(const kws_fb_table *t, unsigned id, uint8_t dflt)
{
    uint32_t p = kws_fb_field(t, id, 1);
    return p ? t->buf[p] : dflt;
}
float kws_fb_f32(const kws_fb_table *t, unsigned id, float dflt)
{
    uint32_t p = kws_fb_field(t, id, 4);
    return p ? kws_rd_f32(t->buf + p) : dflt;
}
uint64_t kws_fb_u64(const kws_fb_table *t, unsigned id, uint64_t dflt)
{
    uint32_t p = kws_fb_field(t, id, 8);
    return p ? kws_rd_u64(t->buf + p) : dflt;
}

static int follow(const kws_fb_table *t, unsigned id, uint32_t *target)
{
    if (field_bad(t, id, 4)) return -1;
    uint32_t p = kws_fb_field(t, id, 4);
    if (!p) return 1;
    uint64_t tgt = (uint64_t)p + kws_rd_u32(t->buf + p);
    if (tgt >= t->len) return -1;
    *target = (uint32_t)tgt;
    return 0;
}

int kws_fb_vector(const kws_fb_table *t, unsigned id, unsigned elem_size, kws_fb_vec *v)
{
    uint32_t at;
    v->pos = 0; v->count = 0;
    int r = follow(t, id, &at);
    if (r) return r;
    if (!in_range(t->len, at, 4) || (at & 3)) return -1;
    uint32_t n = kws_rd_u32(t->buf + at);
    if (!in_range(t->len, (uint64_t)at + 4, (uint64_t)n * elem_size)) return -1;
    v->pos = at + 4; v->count = n;
    return 0;
}

int kws_fb_subtable(const kws_fb_table *t, unsigned id, kws_fb_table *sub)
{
    uint32_t at;
    int r = follow(t, id, &at);
    if (r) return r;
    return kws_fb_table_at(t->buf, t->len, at, sub) ? -1 : 0;
}

int kws_fb_vec_table(const kws_fb_table *parent, const kws_fb_vec *v, uint32_t i, kws_fb_table *t)
{
    if (i >= v->count) return -1;
    uint32_t p = v->pos + 4u * i;
    uint64_t at = (uint64_t)p + kws_rd_u32(parent->buf + p);
    if (at >= parent->len) return -1;
    return kws_fb_table_at(parent->buf, parent->len, (uint32_t)at, t);
}

/* ---------------- FlexBuffers ---------------- */

enum { FX_NULL = 0, FX_INT = 1, FX_UINT = 2, FX_FLOAT = 3, FX_KEY = 4, FX_STRING = 5,
       FX_INDIRECT_INT = 6, FX_INDIRECT_UINT = 7, FX_MAP = 9, FX_BOOL = 26 };

static int fx_uint(const uint8_t *b, uint32_t len, uint64_t pos, uint32_t w, uint64_t *out)
{
    if (!in_range(len, pos, w)) return -1;
    uint64_t v = 0;
    for (uint32_t i = 0; i < w; i++) v |= (uint64_t)b[pos + i] << (8 * i);
    *out = v;
    return 0;
}

static int fx_int(const uint8_t *b, uint32_t len, uint64_t pos, uint32_t w, int64_t *out)
{
    uint64_t u;
    if (fx_uint(b, len, pos, w, &u)) return -1;
    if (w < 8 && (u >> (8 * w - 1)) & 1) u |= ~0ULL << (8 * w);
    *out = (int64_t)u;
    return 0;
}

static int valid_width(uint64_t w) { return w == 1 || w == 2 || w == 4 || w == 8; }

/* back-offset: target = pos - off, must stay inside */
static int fx_back(const uint8_t *b, uint32_t len, uint64_t pos, uint32_t w, uint64_t *target)
{
    uint64_t off;
    if (fx_uint(b, len, pos, w, &off)) return -1;
    if (off > pos) return -1;
    *target = pos - off;
    return 0;
}

typedef struct { uint64_t map, size; uint32_t bw; uint64_t keys; uint32_t kbw; } fx_map;

static int fx_root_map(const uint8_t *b, uint32_t len, fx_map *m)
{
    if (!b || len < 3) return -1;
    uint32_t rbw = b[len - 1];
    uint8_t packed = b[len - 2];
    if (!valid_width(rbw) || len < 2u + rbw) return -1;
    if ((packed >> 2) != FX_MAP) return -1;
    uint64_t root = len - 2u - rbw;
    if (fx_back(b, len, root, rbw, &m->map)) return -1;
    m->bw = 1u << (packed & 3);
    if (m->map < 3u * m->bw) return -1;
    uint64_t kbw;
    if (fx_uint(b, len, m->map - m->bw, m->bw, &m->size)) return -1;
    if (fx_uint(b, len, m->map - 2u * m->bw, m->bw, &kbw) || !valid_width(kbw)) return -1;
    m->kbw = (uint32_t)kbw;
    if (fx_back(b, len, m->map - 3u * m->bw, m->bw, &m->keys)) return -1;
    uint64_t ksize;
    if (m->keys < m->kbw || fx_uint(b, len, m->keys - m->kbw, m->kbw, &ksize) || ksize != m->size) return -1;
    if (m->size > len) return -1;
    if (!in_range(len, m->map, m->size * (m->bw + 1u))) return -1;      /* values + type bytes */
    if (!in_range(len, m->keys, m->size * m->kbw)) return -1;
    return 0;
}

int kws_flex_is_map(const uint8_t *buf, uint32_t len)
{
    fx_map m;
    return fx_root_map(buf, len, &m) == 0;
}

/* find key; returns value position and packed type */
static int fx_find(const uint8_t *b, uint32_t len, const char *key, uint64_t *vpos, uint8_t *packed, uint32_t *pbw)
{
    fx_map m;
    if (fx_root_map(b, len, &m)) return -1;
    size_t klen = strlen(key);
    for (uint64_t i = 0; i < m.size; i++) {
        uint64_t ks;
        if (fx_back(b, len, m.keys + i * m.kbw, m.kbw, &ks)) return -1;
        if (!in_range(len, ks, klen + 1)) continue;
        if (memcmp(b + ks, key, klen) == 0 && b[ks + klen] == 0) {
            *vpos = m.map + i * m.bw;
            *packed = b[m.map + m.size * m.bw + i];
            *pbw = m.bw;
            return 0;
        }
    }
    return 1;
}

int kws_flex_map_int(const uint8_t *b, uint32_t len, const char *key, int64_t *out)
{
    uint64_t vpos, u, target;
    uint8_t packed;
    uint32_t bw;
    int r = fx_find(b, len, key, &vpos, &packed, &bw);
    if (r) return r;
    switch (packed >> 2) {
    case FX_INT: return fx_int(b, len, vpos, bw, out);
    case FX_UINT: case FX_BOOL:
        if (fx_uint(b, len, vpos, bw, &u) || u > INT64_MAX) return -1;
        *out = (int64_t)u; return 0;
    case FX_INDIRECT_INT:
        if (fx_back(b, len, vpos, bw, &target)) return -1;
        return fx_int(b, len, target, 1u << (packed & 3), out);
    case FX_INDIRECT_UINT:
        if (fx_back(b, len, vpos, bw, &target) || fx_uint(b, len, target, 1u << (packed & 3), &u) || u > INT64_MAX) return -1;
        *out = (int64_t)u; return 0;
    default: return -1;
    }
}

int kws_flex_map_string(const uint8_t *b, uint32_t len, const char *key, const char **s, uint32_t *slen)
{
    uint64_t vpos, spos, n;
    uint8_t packed;
    uint32_t bw;
    int r = fx_find(b, len, key, &vpos, &packed, &bw);
    if (r) return r;
    if ((packed >> 2) != FX_STRING && (packed >> 2) != FX_KEY) return -1;
    if (fx_back(b, len, vpos, bw, &spos)) return -1;
    if ((packed >> 2) == FX_KEY) {
        n = 0;
        while (spos + n < len && b[spos + n]) n++;
        if (spos + n >= len) return -1;
    } else {
        uint32_t sw = 1u << (packed & 3);
        if (spos < sw || fx_uint(b, len, spos - sw, sw, &n) || !in_range(len, spos, n + 1) || b[spos + n] != 0) return -1;
    }
    *s = (const char *)(b + spos);
    *slen = (uint32_t)n;
    return 0;
}
