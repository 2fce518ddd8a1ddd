/* netduinoplus2 (QEMU machine) = STM32F405RG: Cortex-M4F, flash 0x08000000 (1 MB), SRAM
 * 0x20000000 (128 KB: SRAM1 112 KB + SRAM2 16 KB), CCM 0x10000000 (64 KB, CPU only: no DMA; not
 * modelled by QEMU 7.2, unused by linker.ld).
 * Console: USART1 at 0x40011000, TX on PA9 / RX on PA10 (alternate function 7): QEMU connects
 * its first serial port (-serial stdio) to USART1. On a real STM32F405 board wire a 3.3 V
 * USB-serial adapter to PA9/PA10/GND, 115200 8N1.
 * Clock tree: left at the reset default (16 MHz HSI) - the loop needs < 50 MHz (docs/porting.md).
 * BRR = 16 MHz / 115200 = 8.68 -> mantissa 8, fraction 11/16 (0x8B). BOARD_CPU_HZ is the clock
 * QEMU gives the core and SysTick (168 MHz): used only for the SysTick fallback under QEMU (ticks *
 * 1e9 / BOARD_CPU_HZ = instructions with -icount shift=0); silicon has DWT CYCCNT. */
#define BOARD_NAME "netduinoplus2"
#define BOARD_UART_STM32 1
#define BOARD_UART_BASE 0x40011000u
#define BOARD_UART_BRR 0x8Bu
#define BOARD_CPU_HZ 168000000ull

#define STM32_RCC_AHB1ENR (*(volatile uint32_t *)0x40023830u)
#define STM32_RCC_APB2ENR (*(volatile uint32_t *)0x40023844u)
#define STM32_GPIOA_MODER (*(volatile uint32_t *)0x40020000u)
#define STM32_GPIOA_AFRH (*(volatile uint32_t *)0x40020024u)
/* GPIOA and USART1 clocks on; PA9/PA10 to alternate function 7 (USART1) */
#define BOARD_STM32_CLOCKS()                                                    \
    do {                                                                        \
        STM32_RCC_AHB1ENR |= 1u << 0;                                           \
        STM32_RCC_APB2ENR |= 1u << 4;                                           \
        (void)STM32_RCC_APB2ENR; /* read back: the clock is on before the first access */ \
        STM32_GPIOA_MODER = (STM32_GPIOA_MODER & ~(0xFu << 18)) | (0xAu << 18); \
        STM32_GPIOA_AFRH = (STM32_GPIOA_AFRH & ~(0xFFu << 4)) | (0x77u << 4);   \
    } while (0)
