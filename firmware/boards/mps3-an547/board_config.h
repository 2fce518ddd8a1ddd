/* mps3-an547 (Cortex-M55, SSE-300, boots Secure): ITCM 0x0 (512 KB) code, DTCM 0x20000000
 * (512 KB) data/stack, SRAM 0x31000000 (2 MB, secure alias) for the model and arena buffers,
 * CMSDK UART0 0x59303000, 32 MHz */
#define BOARD_NAME "mps3-an547"
#define BOARD_UART_BASE 0x59303000u
#define BOARD_CPU_HZ 32000000ull
