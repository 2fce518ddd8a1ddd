/* kws_board.h - the thin board layer. A new board (another emulator or a real kit) implements
 * these functions in boards/<board>/ (or reuses boards/common/cortex_m/ and only adds a
 * board_config.h, a linker script and a board.mk). */
#ifndef KWS_BOARD_H
#define KWS_BOARD_H

#include <stddef.h>
#include <stdint.h>

/* argc/argv: from the command line (Linux/host) or from semihosting SYS_GET_CMDLINE. */
void board_init(int *argc, char ***argv);
void board_puts(const char *s);                  /* console, no newline added */
int board_open(const char *path, int write);     /* handle >= 0, or -1 */
long board_read(int h, void *buf, size_t n);     /* bytes read, -1 on error */
long board_write(int h, const void *buf, size_t n);
long board_file_size(int h);
void board_close(int h);
/* The whole file in memory-mapped flash (boards whose files are linked into the image), or NULL:
 * then read it with board_read. Lets a model stay in flash instead of being copied to RAM. */
const uint8_t *board_file_data(int h);
/* Instructions retired so far (deterministic under qemu -icount shift=0), or 0 if unknown. */
uint64_t board_instructions(void);
int board_has_instruction_counter(void);
/* What board_instructions() counts: "instructions" (SysTick/PMU under qemu -icount), "cycles"
 * (DWT CYCCNT on silicon) or "none". */
const char *board_counter_unit(void);
/* stack high-water mark in bytes since board_init (stack painting), 0 if unknown */
size_t board_stack_used(void);
void board_exit(int code) __attribute__((noreturn));

#endif
