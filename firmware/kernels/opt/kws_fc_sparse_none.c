/* kws_fc_sparse_none.c - builds without an optimized sparse kernel: every sparse layer runs
 * kws_fully_connected_sparse (the reference). */
#include "kws_sparse.h"

const char kws_fc_sparse_opt_isa[] = "none";

int kws_fc_sparse_opt_supported(const kws_fc_params *p, const kws_sparse_params *sp) { (void)p; (void)sp; return 0; }

size_t kws_fc_sparse_opt_scratch_bytes(const kws_fc_params *p, const kws_sparse_params *sp) { (void)p; (void)sp; return 0; }

void kws_fully_connected_sparse_opt(const kws_fc_params *p, const kws_sparse_params *sp, void *scratch,
                                    int32_t batches, const int8_t *input, const int32_t *bias, int8_t *output)
{
    (void)scratch;
    kws_fully_connected_sparse(p, sp, batches, input, bias, output);
}
