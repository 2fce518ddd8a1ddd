/* Board layer for Linux user space: the host build (x86, ASan/UBSan) and the static AArch64
 * binary run under qemu-aarch64. Files and console through stdio; qemu-aarch64 has no
 * -icount, so there is no instruction counter here (0 = unknown). */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "kws_board.h"

#define MAX_FILES 8
#define PAINT_BYTES (64 * 1024)
static FILE *files[MAX_FILES];
static volatile unsigned char *paint_lo;

#if defined(__SANITIZE_ADDRESS__)
#define KWS_NO_STACK_PAINT 1
#endif

#ifndef KWS_NO_STACK_PAINT
#if defined(__GNUC__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wdangling-pointer" /* on purpose: we scan the region after return */
#endif
__attribute__((noinline)) static void paint_stack(void)
{
    volatile unsigned char buf[PAINT_BYTES];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = 0xA5;
    uintptr_t addr = (uintptr_t)buf; /* kept on purpose: later frames reuse this region */
    paint_lo = (volatile unsigned char *)addr; /* the region stays below later frames */
}
#endif

void board_init(int *argc, char ***argv)
{
    (void)argc; (void)argv;
#ifndef KWS_NO_STACK_PAINT
    paint_stack();
#endif
}

size_t board_stack_used(void)
{
    if (!paint_lo) return 0;
    size_t i = 0;
    while (i < PAINT_BYTES && paint_lo[i] == 0xA5) i++;
    return PAINT_BYTES - i; /* bytes below board_init's caller frame that were touched */
}

void board_puts(const char *s) { fputs(s, stdout); fflush(stdout); }

int board_open(const char *path, int write)
{
    for (int i = 0; i < MAX_FILES; i++)
        if (!files[i]) {
            files[i] = fopen(path, write ? "wb" : "rb");
            return files[i] ? i : -1;
        }
    return -1;
}

long board_read(int h, void *buf, size_t n)
{
    if (h < 0 || h >= MAX_FILES || !files[h]) return -1;
    return (long)fread(buf, 1, n, files[h]);
}

long board_write(int h, const void *buf, size_t n)
{
    if (h < 0 || h >= MAX_FILES || !files[h]) return -1;
    return (long)fwrite(buf, 1, n, files[h]);
}

long board_file_size(int h)
{
    if (h < 0 || h >= MAX_FILES || !files[h]) return -1;
    long pos = ftell(files[h]);
    fseek(files[h], 0, SEEK_END);
    long size = ftell(files[h]);
    fseek(files[h], pos, SEEK_SET);
    return size;
}

void board_close(int h)
{
    if (h < 0 || h >= MAX_FILES || !files[h]) return;
    fclose(files[h]);
    files[h] = NULL;
}

int board_has_instruction_counter(void) { return 0; }
uint64_t board_instructions(void) { return 0; }

void board_exit(int code)
{
    fflush(stdout);
    exit(code);
}

const uint8_t *board_file_data(int h) { return NULL; }
const char *board_counter_unit(void) { return "none"; }
