/* Board layer shared by the Cortex-M boards: CMSDK UART console, semihosting files/args/exit,
 * SysTick instruction counter (exact under qemu -icount shift=0: 1 instruction = 1 ns of virtual
 * time, so instructions = ticks * 1e9 / BOARD_CPU_HZ), stack painting. The board folder gives
 * board_config.h (BOARD_UART_BASE, BOARD_CPU_HZ, BOARD_NAME). */
#include <string.h>
#include "kws_board.h"
#include "stack_paint.h"
#include "semihost.h"
#include "board_config.h"

#define UART_DATA (*(volatile uint32_t *)(BOARD_UART_BASE + 0x0))
#define UART_STATE (*(volatile uint32_t *)(BOARD_UART_BASE + 0x4))
#define UART_CTRL (*(volatile uint32_t *)(BOARD_UART_BASE + 0x8))
#define UART_BAUDDIV (*(volatile uint32_t *)(BOARD_UART_BASE + 0x10))
#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
#define SYST_RELOAD 0x00FFFFFFu

static volatile uint32_t systick_wraps;
static char cmdline[512];
static char *args[16];

void SysTick_Handler(void) { systick_wraps++; }

size_t board_stack_used(void) { return kws_stack_used(); }

void board_init(int *argc, char ***argv)
{
    kws_paint_stack();
    UART_BAUDDIV = 16;
    UART_CTRL = 1; /* TX enable */
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 7;  /* processor clock, interrupt, enable */
    struct { char *buf; int32_t len; } a = {cmdline, (int32_t)sizeof cmdline - 1};
    int n = 0;
    if (semihost_call(SH_SYS_GET_CMDLINE, &a) == 0) {
        cmdline[sizeof cmdline - 1] = 0;
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

void board_puts(const char *s)
{
    while (*s) {
        while (UART_STATE & 1) {}
        UART_DATA = (uint8_t)*s++;
    }
}

int board_open(const char *path, int write)
{
    struct { const char *name; int32_t mode; int32_t len; } a = {path, write ? 5 : 1, (int32_t)strlen(path)};
    return semihost_call(SH_SYS_OPEN, &a);
}

long board_read(int h, void *buf, size_t n)
{
    struct { int32_t h; void *buf; int32_t len; } a = {h, buf, (int32_t)n};
    int32_t left = semihost_call(SH_SYS_READ, &a);
    return left < 0 ? -1 : (long)n - left;
}

long board_write(int h, const void *buf, size_t n)
{
    struct { int32_t h; const void *buf; int32_t len; } a = {h, buf, (int32_t)n};
    int32_t left = semihost_call(SH_SYS_WRITE, &a);
    return left < 0 ? -1 : (long)n - left;
}

long board_file_size(int h)
{
    int32_t a = h;
    return semihost_call(SH_SYS_FLEN, &a);
}

void board_close(int h)
{
    int32_t a = h;
    semihost_call(SH_SYS_CLOSE, &a);
}

int board_has_instruction_counter(void) { return 1; }

uint64_t board_instructions(void)
{
    uint32_t hi, val;
    do {
        hi = systick_wraps;
        val = SYST_CVR;
    } while (hi != systick_wraps);
    uint64_t ticks = (uint64_t)hi * (SYST_RELOAD + 1u) + (SYST_RELOAD - val);
    return ticks * 1000000000ull / BOARD_CPU_HZ;
}

void board_exit(int code)
{
    struct { int32_t reason; int32_t code; } a = {0x20026, code}; /* ADP_Stopped_ApplicationExit */
    semihost_call(SH_SYS_EXIT_EXTENDED, &a);
    for (;;) {}
}

const uint8_t *board_file_data(int h) { return NULL; }
const char *board_counter_unit(void) { return "instructions"; }
