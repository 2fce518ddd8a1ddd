/* The files of a self-contained image, linked into flash (board_uart.c): KWS_BLOB_CMDLINE,
 * KWS_BLOB_MODEL, KWS_BLOB_DATA are paths given by the Makefile (boards.mk). 16-byte aligned so
 * the model can be used in place (the runtime needs 4; TFLite's buffers want 16). */
#define BLOB(sym, path)            \
    .section .rodata.kws_blobs, "a"; \
    .balign 16;                    \
    .global sym;                   \
    sym:                           \
    .incbin path;                  \
    .global sym##_end;             \
    sym##_end:                     \
    .byte 0

BLOB(kws_blob_cmdline, KWS_BLOB_CMDLINE)
BLOB(kws_blob_model, KWS_BLOB_MODEL)
BLOB(kws_blob_data, KWS_BLOB_DATA)
