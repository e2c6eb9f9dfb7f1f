/* The four memory functions GCC may call even in freestanding code (struct copies, large
 * initialisers, loop idioms). Kept deliberately simple: firmware speed is measured on generated
 * code, not here. The optimize attribute stops GCC from turning these loops back into calls to
 * themselves. */
#include <stddef.h>
#include <stdint.h>

#define NO_LOOP_IDIOMS __attribute__((optimize("no-tree-loop-distribute-patterns")))

NO_LOOP_IDIOMS void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
  uint8_t *d = dst;
  const uint8_t *s = src;
  while (n-- != 0) *d++ = *s++;
  return dst;
}

NO_LOOP_IDIOMS void *memmove(void *dst, const void *src, size_t n) {
  uint8_t *d = dst;
  const uint8_t *s = src;
  if (d < s) {
    while (n-- != 0) *d++ = *s++;
  } else {
    while (n != 0) {
      n--;
      d[n] = s[n];
    }
  }
  return dst;
}

NO_LOOP_IDIOMS void *memset(void *dst, int c, size_t n) {
  uint8_t *d = dst;
  while (n-- != 0) *d++ = (uint8_t)c;
  return dst;
}

NO_LOOP_IDIOMS int memcmp(const void *a, const void *b, size_t n) {
  const uint8_t *x = a;
  const uint8_t *y = b;
  for (size_t i = 0; i < n; i++) {
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}
