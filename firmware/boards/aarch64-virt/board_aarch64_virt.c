/* Board layer for bare-metal AArch64 on qemu-system-aarch64 -M virt: PL011 UART console,
 * semihosting (HLT #0xF000) for files/args/exit, PMU event INST_RETIRED (0x08) as the
 * instruction counter (exact under -icount), stack painting. */
#include <stdint.h>
#include <string.h>
#include "kws_board.h"

#define UART_DR (*(volatile uint32_t *)0x09000000u)
#define UART_FR (*(volatile uint32_t *)0x09000018u)
#define STACK_PAINT 0xC5A5C5A5u

extern uint32_t __StackLimit, __StackTop;
static char cmdline[512];
static char *args[16];
static uint64_t inst_base, inst_hi;
static uint32_t inst_last;

static int64_t semihost(uint64_t op, const void *arg)
{
    register uint64_t x0 __asm__("x0") = op;
    register const void *x1 __asm__("x1") = arg;
    __asm__ volatile("hlt #0xf000" : "+r"(x0) : "r"(x1) : "memory");
    return (int64_t)x0;
}

void unexpected_exception(void)
{
    board_puts("FAULT: unexpected exception\n");
    board_exit(100);
}

void board_init(int *argc, char ***argv)
{
    uint32_t *p = &__StackLimit, *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    while (p < sp - 64) *p++ = STACK_PAINT;
    /* PMU: counter 0 counts INST_RETIRED at EL1 and EL0 */
    __asm__ volatile("msr pmevtyper0_el0, %0" ::"r"((uint64_t)0x08));
    __asm__ volatile("msr pmcntenset_el0, %0" ::"r"((uint64_t)1));
    __asm__ volatile("msr pmcr_el0, %0; isb" ::"r"((uint64_t)1));
    struct { char *buf; uint64_t len; } a = {cmdline, sizeof cmdline - 1};
    int n = 0;
    if (semihost(0x15, &a) == 0) {
        char *s = cmdline;
        while (*s && n < 16) {
            while (*s == ' ') *s++ = 0;
            if (!*s) break;
            args[n++] = s;
            while (*s && *s != ' ') s++;
        }
    }
    *argc = n;
    *argv = args;
}

size_t board_stack_used(void)
{
    uint32_t *p = &__StackLimit;
    while (p < &__StackTop && *p == STACK_PAINT) p++;
    return (size_t)((char *)&__StackTop - (char *)p);
}

void board_puts(const char *s)
{
    while (*s) {
        while (UART_FR & (1u << 5)) {}
        UART_DR = (uint8_t)*s++;
    }
}

int board_open(const char *path, int write)
{
    struct { const char *name; uint64_t mode, len; } a = {path, write ? 5u : 1u, strlen(path)};
    return (int)semihost(0x01, &a);
}

long board_read(int h, void *buf, size_t n)
{
    struct { uint64_t h; void *buf; uint64_t len; } a = {(uint64_t)h, buf, n};
    int64_t left = semihost(0x06, &a);
    return left < 0 ? -1 : (long)(n - (size_t)left);
}

long board_write(int h, const void *buf, size_t n)
{
    struct { uint64_t h; const void *buf; uint64_t len; } a = {(uint64_t)h, buf, n};
    int64_t left = semihost(0x05, &a);
    return left < 0 ? -1 : (long)(n - (size_t)left);
}

long board_file_size(int h)
{
    uint64_t a = (uint64_t)h;
    return (long)semihost(0x0C, &a);
}

void board_close(int h)
{
    uint64_t a = (uint64_t)h;
    semihost(0x02, &a);
}

int board_has_instruction_counter(void) { return 1; }

uint64_t board_instructions(void)
{
    uint64_t v;
    __asm__ volatile("isb; mrs %0, pmevcntr0_el0" : "=r"(v));
    uint32_t now = (uint32_t)v;
    if (now < inst_last) inst_hi += 1ull << 32;  /* 32-bit counter wrapped (read often enough) */
    inst_last = now;
    (void)inst_base;
    return inst_hi + now;
}

void board_exit(int code)
{
    struct { uint64_t reason, code; } a = {0x20026, (uint64_t)(int64_t)code};
    semihost(0x18, &a);
    for (;;) {}
}

const uint8_t *board_file_data(int h) { return NULL; }
const char *board_counter_unit(void) { return "instructions"; }
