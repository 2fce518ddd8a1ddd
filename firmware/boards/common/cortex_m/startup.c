/* Cortex-M startup: vector table, Reset_Handler (copy .data, zero .bss, enable FPU/MVE), main. */
#include <stdint.h>
#include "kws_board.h"

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __StackTop;
extern int main(int argc, char **argv);
void Reset_Handler(void);
void SysTick_Handler(void);

static void Default_Handler(void)
{
    board_puts("FAULT: unexpected exception\n");
    board_exit(100);
}

__attribute__((section(".vectors"), used))
const void *const vector_table[16] = {
    &__StackTop, (const void *)Reset_Handler,
    (const void *)Default_Handler, /* NMI */
    (const void *)Default_Handler, /* HardFault */
    (const void *)Default_Handler, /* MemManage */
    (const void *)Default_Handler, /* BusFault */
    (const void *)Default_Handler, /* UsageFault */
    0, 0, 0, 0,
    (const void *)Default_Handler, /* SVC */
    (const void *)Default_Handler, /* DebugMon */
    0,
    (const void *)Default_Handler, /* PendSV */
    (const void *)SysTick_Handler,
};

void Reset_Handler(void)
{
    uint32_t *src = &__data_load, *dst = &__data_start;
    while (dst < &__data_end) *dst++ = *src++;
    for (dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* CPACR: full access to CP10/CP11 (FPU and MVE) */
    *(volatile uint32_t *)0xE000ED88 |= (0xFu << 20);
    __asm__ volatile("dsb\n isb" ::: "memory");
#endif
    board_exit(main(0, 0));
}
