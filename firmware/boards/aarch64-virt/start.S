/* AArch64 bare-metal entry for qemu-system-aarch64 -M virt (enters at EL1, MMU and caches off). */
    .section .text.boot, "ax"
    .global _start
_start:
    mrs     x0, mpidr_el1
    and     x0, x0, #0xff
    cbnz    x0, park                  /* only core 0 runs */
    ldr     x0, =__StackTop
    mov     sp, x0
    mov     x0, #(3 << 20)            /* CPACR_EL1.FPEN: no FP/SIMD trapping */
    msr     cpacr_el1, x0
    isb
    ldr     x0, =vectors
    msr     vbar_el1, x0
    isb
    ldr     x0, =__bss_start
    ldr     x1, =__bss_end
1:  cmp     x0, x1
    b.hs    2f
    str     xzr, [x0], #8
    b       1b
2:  mov     x0, #0
    mov     x1, #0
    bl      main
    bl      board_exit
park:
    wfe
    b       park

/* every exception: report and exit with code 100 */
    .balign 2048
vectors:
    .rept 16
    .balign 128
    b       unexpected_exception
    .endr
