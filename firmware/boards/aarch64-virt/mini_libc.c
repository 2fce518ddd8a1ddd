/* The few C library functions the runtime needs, for the freestanding AArch64 build
 * (glibc's static memcpy & co. need its own startup code). Bytewise: no unaligned accesses
 * with the MMU off. */
/* keep GCC from turning these loops back into calls to memset/memcpy (infinite recursion) */
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#include <stddef.h>
#include <stdint.h>

void *memset(void *d, int c, size_t n) { unsigned char *p = d; while (n--) *p++ = (unsigned char)c; return d; }
void *memcpy(void *d, const void *s, size_t n) { unsigned char *p = d; const unsigned char *q = s; while (n--) *p++ = *q++; return d; }
void *memmove(void *d, const void *s, size_t n)
{
    unsigned char *p = d; const unsigned char *q = s;
    if (p < q) while (n--) *p++ = *q++;
    else { p += n; q += n; while (n--) *--p = *--q; }
    return d;
}
int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *p = a, *q = b;
    for (; n; n--, p++, q++) if (*p != *q) return *p - *q;
    return 0;
}
size_t strlen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }

double frexp(double x, int *e)
{
    union { double d; uint64_t u; } v = {x};
    int ex = (int)((v.u >> 52) & 0x7ff);
    *e = 0;
    if (x == 0.0 || ex == 0x7ff) return x;
    if (ex == 0) { v.d = x * 18014398509481984.0; ex = (int)((v.u >> 52) & 0x7ff) - 54; } /* subnormal: * 2^54 */
    *e = ex - 1022;
    v.u = (v.u & ~(0x7ffull << 52)) | (1022ull << 52);
    return v.d;
}
double floor(double x) { double r; __asm__("frintm %d0, %d1" : "=w"(r) : "w"(x)); return r; }
double round(double x) { double r; __asm__("frinta %d0, %d1" : "=w"(r) : "w"(x)); return r; } /* half away from 0 */
float roundf(float x) { float r; __asm__("frinta %s0, %s1" : "=w"(r) : "w"(x)); return r; }
