/* Board layer of the self-contained Cortex-M images (no semihosting, no debugger needed): what a
 * user flashes onto a dev kit is this image, and the emulator tests run the same one.
 *
 *   console   the board's UART (CMSDK APB UART on MPS2/MPS3, STM32 USART on STM32F4), TX only;
 *   files     read-only blobs linked into flash by uart_blobs.S: "cmdline" (argv, one line),
 *             "model" (.tflite) and "data" (test vectors or audio); board_file_data() maps them
 *             in place, so a model is never copied to RAM;
 *   counter   DWT CYCCNT (core cycles) where it counts - real Cortex-M3/M4/M7/M33/M55 silicon -
 *             else SysTick at the core clock, converted like the semihosted boards (ticks * 1e9 /
 *             BOARD_CPU_HZ = instructions under qemu -icount shift=0; QEMU has no DWT);
 *   exit      prints "EXIT <code>" and sleeps (there is nobody to return to); a host harness reads
 *             the console up to that line.
 * board_config.h: BOARD_NAME, BOARD_UART_BASE, BOARD_CPU_HZ and BOARD_UART_STM32 for the STM32
 * USART register layout (plus BOARD_STM32_CLOCKS: enable the GPIO/USART clocks and pins). */
#include <string.h>
#include "kws_board.h"
#include "stack_paint.h"
#include "kws_console.h"
#include "board_config.h"

#define REG(a) (*(volatile uint32_t *)(a))
#define SYST_CSR REG(0xE000E010)
#define SYST_RVR REG(0xE000E014)
#define SYST_CVR REG(0xE000E018)
#define SYST_RELOAD 0x00FFFFFFu
#define DEMCR REG(0xE000EDFC)
#define DWT_CTRL REG(0xE0001000)
#define DWT_CYCCNT REG(0xE0001004)
#define DWT_LAR REG(0xE0001FB0)

extern const uint8_t kws_blob_cmdline[], kws_blob_cmdline_end[], kws_blob_model[], kws_blob_model_end[],
    kws_blob_data[], kws_blob_data_end[];

static const struct { const char *name; const uint8_t *start, *end; } files[] = {
    {"cmdline", kws_blob_cmdline, kws_blob_cmdline_end},
    {"model", kws_blob_model, kws_blob_model_end},
    {"data", kws_blob_data, kws_blob_data_end},
};
#define NFILES (int)(sizeof files / sizeof files[0])
static size_t pos[NFILES];
static char cmdline[256];
static char *args[16];
static volatile uint32_t systick_wraps;
static int use_dwt;
static uint32_t dwt_last, dwt_high;

void SysTick_Handler(void) { systick_wraps++; }

#ifdef BOARD_UART_STM32
/* STM32F4 USART: SR (TXE bit 7), DR, BRR, CR1 (UE bit 13, TE bit 3) */
#define UART_SR REG(BOARD_UART_BASE + 0x00)
#define UART_DR REG(BOARD_UART_BASE + 0x04)
#define UART_BRR REG(BOARD_UART_BASE + 0x08)
#define UART_CR1 REG(BOARD_UART_BASE + 0x0C)
static void uart_init(void)
{
#ifdef BOARD_STM32_CLOCKS
    BOARD_STM32_CLOCKS();
#endif
    UART_BRR = BOARD_UART_BRR;
    UART_CR1 = (1u << 13) | (1u << 3);
}
static void uart_putc(char c)
{
    while (!(UART_SR & (1u << 7))) {}
    UART_DR = (uint8_t)c;
}
#else
/* CMSDK APB UART: DATA, STATE (TX full bit 0), CTRL (TX enable bit 0), BAUDDIV */
#define UART_DATA REG(BOARD_UART_BASE + 0x0)
#define UART_STATE REG(BOARD_UART_BASE + 0x4)
#define UART_CTRL REG(BOARD_UART_BASE + 0x8)
#define UART_BAUDDIV REG(BOARD_UART_BASE + 0x10)
static void uart_init(void)
{
    UART_BAUDDIV = BOARD_CPU_HZ / 115200u;
    UART_CTRL = 1;
}
static void uart_putc(char c)
{
    while (UART_STATE & 1) {}
    UART_DATA = (uint8_t)c;
}
#endif

static void counter_init(void)
{
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 7; /* core clock, interrupt, enable */
    DEMCR |= 1u << 24; /* TRCENA */
    DWT_LAR = 0xC5ACCE55u; /* software lock of the DWT on Cortex-M7 parts; ignored where there is none */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;    /* CYCCNTENA */
    for (volatile int i = 0; i < 16; i++) {}
    use_dwt = DWT_CYCCNT != 0; /* reads 0 where there is no DWT (QEMU) */
}

size_t board_stack_used(void) { return kws_stack_used(); }

void board_init(int *argc, char ***argv)
{
    kws_paint_stack();
    uart_init();
    counter_init();
    size_t n = (size_t)(kws_blob_cmdline_end - kws_blob_cmdline);
    if (n > sizeof cmdline - 1) n = sizeof cmdline - 1;
    memcpy(cmdline, kws_blob_cmdline, n);
    cmdline[n] = 0;
    int k = 0;
    for (char *s = cmdline; *s && k < 16;) {
        while (*s == ' ' || *s == '\n' || *s == '\r') *s++ = 0;
        if (!*s) break;
        args[k++] = s;
        while (*s && *s != ' ' && *s != '\n' && *s != '\r') s++;
    }
    *argc = k;
    *argv = args;
}

void board_puts(const char *s)
{
    for (; *s; s++) {
        if (*s == '\n') uart_putc('\r');
        uart_putc(*s);
    }
}

int board_open(const char *path, int write)
{
    if (write) return -1;
    for (int i = 0; i < NFILES; i++)
        if (!strcmp(path, files[i].name)) { pos[i] = 0; return i; }
    return -1;
}

static size_t file_size(int h) { return (size_t)(files[h].end - files[h].start); }

long board_read(int h, void *buf, size_t n)
{
    if (h < 0 || h >= NFILES) return -1;
    size_t left = file_size(h) - pos[h];
    if (n > left) n = left;
    memcpy(buf, files[h].start + pos[h], n);
    pos[h] += n;
    return (long)n;
}

long board_write(int h, const void *buf, size_t n) { return -1; }
long board_file_size(int h) { return h >= 0 && h < NFILES ? (long)file_size(h) : -1; }
const uint8_t *board_file_data(int h) { return h >= 0 && h < NFILES ? files[h].start : NULL; }
void board_close(int h) {}

int board_has_instruction_counter(void) { return 1; }
const char *board_counter_unit(void) { return use_dwt ? "cycles" : "instructions"; }

uint64_t board_instructions(void)
{
    if (use_dwt) { /* 32-bit CYCCNT widened; valid if read at least once per 2^32 cycles */
        uint32_t now = DWT_CYCCNT;
        if (now < dwt_last) dwt_high++;
        dwt_last = now;
        return (uint64_t)dwt_high << 32 | now;
    }
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
    kws_put_i64("EXIT ", code);
    board_puts("\n");
    for (;;) __asm__ volatile("wfi");
}
