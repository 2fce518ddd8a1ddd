/* Arm semihosting calls (bkpt 0xAB in Thumb state). QEMU needs -semihosting-config enable=on. */
#ifndef KWS_SEMIHOST_H
#define KWS_SEMIHOST_H
#include <stdint.h>

enum {
    SH_SYS_OPEN = 0x01, SH_SYS_CLOSE = 0x02, SH_SYS_WRITE0 = 0x04, SH_SYS_WRITE = 0x05, SH_SYS_READ = 0x06,
    SH_SYS_FLEN = 0x0C, SH_SYS_GET_CMDLINE = 0x15, SH_SYS_EXIT = 0x18, SH_SYS_EXIT_EXTENDED = 0x20
};

static inline int32_t semihost_call(int32_t op, const void *arg)
{
    register int32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
#endif
