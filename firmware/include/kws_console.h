/* kws_console.h - number output and argument parsing for the apps (kws_runner, kws_selftest,
 * kws_stream, kws_kbench) and the UART board layer, on top of board_puts: no printf, so the same
 * code runs on semihosting, a UART and the host. */
#ifndef KWS_CONSOLE_H
#define KWS_CONSOLE_H

#include <stdint.h>
#include "kws_board.h"

/* label, then v in decimal */
static inline void kws_put_u64(const char *label, uint64_t v)
{
    char buf[24];
    int i = sizeof buf - 1;
    buf[i] = 0;
    do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v && i > 0);
    board_puts(label);
    board_puts(buf + i);
}

static inline void kws_put_i64(const char *label, int64_t v)
{
    if (v < 0) { board_puts(label); kws_put_u64("-", (uint64_t)0 - (uint64_t)v); }
    else kws_put_u64(label, (uint64_t)v);
}

/* leading decimal digits of s (0 when there are none) */
static inline uint64_t kws_parse_u64(const char *s)
{
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') v = v * 10 + (uint64_t)(*s++ - '0');
    return v;
}

#endif
