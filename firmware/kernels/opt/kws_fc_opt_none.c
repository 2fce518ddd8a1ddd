/* kws_fc_opt_none.c - the "no optimized kernel" ISA: linked into builds without DSP / Helium / NEON
 * kernels (the host sanitizer builds, reference-only images). kws_fc_opt_supported() says no to
 * everything, so the runtime keeps every FULLY_CONNECTED on the reference kernels and rejects
 * SUB8_FULLY_CONNECTED layouts 2/3 at init with KWS_ERR_UNSUPPORTED. */
#include "kws_kernels_opt.h"

const char kws_fc_opt_isa[] = "reference";
const int kws_fc_opt_per_tensor = 0;

int kws_fc_opt_supported(int32_t bits, int32_t layout)
{
    (void)bits;
    (void)layout;
    return 0;
}

int32_t kws_fc_opt_preferred_layout(int32_t bits)
{
    (void)bits;
    return -1;
}

size_t kws_fc_opt_scratch_bytes(const kws_fc_params *p)
{
    (void)p;
    return 0;
}

void kws_fully_connected_opt(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, int32_t batches,
                             const int8_t *input, const uint8_t *weights, const int32_t *bias, int8_t *output)
{
    (void)p; (void)ctx; (void)batches; (void)input; (void)weights; (void)bias; (void)output;
}
