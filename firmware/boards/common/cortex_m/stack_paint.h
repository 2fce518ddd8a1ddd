/* stack_paint.h - the stack high-water mark of both Cortex-M board layers (board_cortex_m.c, semihosted;
 * board_uart.c, the self-contained UART images): board_init paints the stack below its own frame,
 * board_stack_used counts from the top down to the first word still painted. __StackLimit and
 * __StackTop come from the linker script (cortex_m_sections.ld, boards/<board>/linker.ld). */
#ifndef KWS_STACK_PAINT_H
#define KWS_STACK_PAINT_H

#include <stddef.h>
#include <stdint.h>

#define STACK_PAINT 0xC5A5C5A5u

extern uint32_t __StackLimit, __StackTop;

static inline void kws_paint_stack(void)
{
    uint32_t *p = &__StackLimit;
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    while (p < sp - 32) *p++ = STACK_PAINT;
}

static inline size_t kws_stack_used(void)
{
    uint32_t *p = &__StackLimit;
    while (p < &__StackTop && *p == STACK_PAINT) p++;
    return (size_t)((char *)&__StackTop - (char *)p);
}

#endif
