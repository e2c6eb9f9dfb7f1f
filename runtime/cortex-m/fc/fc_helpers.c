/* The standard femto-container helpers: printf, memcpy, the local and global key-value stores and
 * the clocks, with RIOT's helper ids (fc.h FC_HELPER_*). runtime/helpers.ts implements the same
 * ids with the same results on the host; keep the two in step.
 *
 * Pointer arguments are declared (fc_register_helper_checked), so the dispatcher has checked them
 * against the container's regions before any of these runs: a bad pointer is a `helper` fault,
 * never an access outside the sandbox. Nothing here allocates. */
#include "fc.h"

static void (*output)(const char *text, size_t len);
static uint64_t (*clock_us)(void);
static fc_kv_t kv_global[FC_KV_GLOBAL_CAPACITY];
static uint32_t kv_global_count;

void fc_set_output(void (*write)(const char *text, size_t len)) {
  output = write;
}

void fc_set_clock(uint64_t (*now_us)(void)) {
  clock_us = now_us;
}

void fc_kv_global_clear(void) {
  kv_global_count = 0;
}

/* ---- printf ---- */

typedef struct {
  char buf[32];
  uint32_t n;
  uint32_t total;
} out_t;

static void flush(out_t *o) {
  if (o->n != 0 && output != 0) output(o->buf, o->n);
  o->n = 0;
}

static void put(out_t *o, char ch) {
  o->buf[o->n++] = ch;
  o->total++;
  if (o->n == sizeof o->buf) flush(o);
}

static void pad(out_t *o, char ch, uint32_t count) {
  while (count-- > 0) put(o, ch);
}

/* One conversion's text: `sign` (0 or '-') then `len` characters of `body`, padded to `width`. */
static void emit(out_t *o, char sign, const char *body, uint32_t len, uint32_t width, int left, int zero) {
  uint32_t total = len + (sign != 0 ? 1u : 0u);
  uint32_t fill = width > total ? width - total : 0;
  if (!left && !zero) pad(o, ' ', fill);
  if (sign != 0) put(o, sign);
  if (!left && zero) pad(o, '0', fill);
  for (uint32_t i = 0; i < len; i++) put(o, body[i]);
  if (left) pad(o, ' ', fill);
}

static uint64_t helper_printf(fc_call_t *call, uint64_t fmt_addr, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5) {
  (void)fmt_addr;
  const char *f = (const char *)call->ptr[0];
  const uint64_t args[4] = {a2, a3, a4, a5};
  uint32_t next = 0;
  out_t o;
  o.n = 0;
  o.total = 0;
  while (*f != 0) {
    if (*f != '%') {
      put(&o, *f++);
      continue;
    }
    f++;
    int left = 0, zero = 0, wide = 0;
    for (;; f++) {
      if (*f == '-') left = 1;
      else if (*f == '0') zero = 1;
      else break;
    }
    uint32_t width = 0;
    for (int k = 0; k < 2 && *f >= '0' && *f <= '9'; k++) width = width * 10u + (uint32_t)(*f++ - '0');
    if (*f == 'l') {
      wide = 1;
      f++;
      if (*f == 'l') f++;
    }
    char conv = *f++;
    if (conv == '%') {
      put(&o, '%');
      continue;
    }
    if (conv != 'd' && conv != 'i' && conv != 'u' && conv != 'x' && conv != 'X' && conv != 'c' && conv != 's') {
      flush(&o);
      fc_call_fail(call); /* unsupported conversion (or the format ends inside one) */
      return 0;
    }
    if (next == 4) {
      flush(&o);
      fc_call_fail(call); /* more conversions than the four arguments r2..r5 */
      return 0;
    }
    uint64_t v = args[next++];
    if (conv == 's') {
      const char *s = fc_call_str(call, v);
      if (s == 0) {
        flush(&o);
        fc_call_fail(call);
        return 0;
      }
      uint32_t len = 0;
      while (s[len] != 0) len++;
      emit(&o, 0, s, len, width, left, 0);
      continue;
    }
    if (conv == 'c') {
      char ch = (char)(uint8_t)v;
      emit(&o, 0, &ch, 1, width, left, 0);
      continue;
    }
    char sign = 0;
    if (!wide) v = (conv == 'd' || conv == 'i') ? (uint64_t)(int64_t)(int32_t)(uint32_t)v : (uint32_t)v;
    if ((conv == 'd' || conv == 'i') && (int64_t)v < 0) {
      sign = '-';
      v = 0u - v;
    }
    uint32_t base = (conv == 'x' || conv == 'X') ? 16u : 10u;
    const char *digits = conv == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[20];
    uint32_t n = 0;
    do {
      tmp[sizeof tmp - 1 - n++] = digits[v % base];
      v /= base;
    } while (v != 0);
    emit(&o, sign, &tmp[sizeof tmp - n], n, width, left, zero && !left);
  }
  flush(&o);
  return o.total;
}

static const fc_arg_t printf_args[5] = {FC_ARG_STR, FC_ARG_ANY, FC_ARG_ANY, FC_ARG_ANY, FC_ARG_ANY};

/* ---- memcpy ---- */

static uint64_t helper_memcpy(fc_call_t *call, uint64_t dst, uint64_t src, uint64_t len, uint64_t r4, uint64_t r5) {
  (void)src;
  (void)r4;
  (void)r5;
  uint8_t *d = (uint8_t *)call->ptr[0];
  const uint8_t *s = (const uint8_t *)call->ptr[1];
  uint32_t n = (uint32_t)len; /* checked: both ranges lie in regions, so len < 2^32 */
  if (n != 0) {
    if (d < s) {
      for (uint32_t i = 0; i < n; i++) d[i] = s[i];
    } else if (d > s) {
      for (uint32_t i = n; i-- > 0;) d[i] = s[i];
    }
  }
  return dst;
}

static const fc_arg_t memcpy_args[5] = {FC_ARG_WRITE(3), FC_ARG_READ(3), FC_ARG_ANY, FC_ARG_ANY, FC_ARG_ANY};

/* ---- key-value stores ---- */

static uint64_t kv_store(fc_kv_t *kv, uint32_t *count, uint32_t capacity, uint64_t key, uint64_t value) {
  uint32_t k = (uint32_t)key;
  uint32_t i = 0;
  while (i < *count && kv[i].key != k) i++;
  if (i == *count) {
    if (*count == capacity) return ~0ull;
    (*count)++;
    kv[i].key = k;
  }
  kv[i].value = (uint32_t)value;
  return 0;
}

static uint64_t kv_fetch(const fc_kv_t *kv, uint32_t count, uint64_t key, uint8_t *out) {
  uint32_t k = (uint32_t)key;
  for (uint32_t i = 0; i < count; i++) {
    if (kv[i].key == k) {
      uint32_t v = kv[i].value;
      for (int b = 0; b < 4; b++) out[b] = (uint8_t)(v >> (8 * b));
      return 0;
    }
  }
  return ~0ull;
}

static uint64_t helper_store_local(fc_call_t *call, uint64_t key, uint64_t value, uint64_t r3, uint64_t r4, uint64_t r5) {
  (void)r3;
  (void)r4;
  (void)r5;
  fc_container_t *c = call->container;
  return kv_store(c->kv_local, &c->kv_local_count, FC_KV_LOCAL_CAPACITY, key, value);
}

static uint64_t helper_store_global(fc_call_t *call, uint64_t key, uint64_t value, uint64_t r3, uint64_t r4, uint64_t r5) {
  (void)call;
  (void)r3;
  (void)r4;
  (void)r5;
  return kv_store(kv_global, &kv_global_count, FC_KV_GLOBAL_CAPACITY, key, value);
}

static uint64_t helper_fetch_local(fc_call_t *call, uint64_t key, uint64_t ptr, uint64_t r3, uint64_t r4, uint64_t r5) {
  (void)ptr;
  (void)r3;
  (void)r4;
  (void)r5;
  return kv_fetch(call->container->kv_local, call->container->kv_local_count, key, (uint8_t *)call->ptr[1]);
}

static uint64_t helper_fetch_global(fc_call_t *call, uint64_t key, uint64_t ptr, uint64_t r3, uint64_t r4, uint64_t r5) {
  (void)ptr;
  (void)r3;
  (void)r4;
  (void)r5;
  return kv_fetch(kv_global, kv_global_count, key, (uint8_t *)call->ptr[1]);
}

static const fc_arg_t fetch_args[5] = {FC_ARG_ANY, FC_ARG_WRITE_N(4), FC_ARG_ANY, FC_ARG_ANY, FC_ARG_ANY};

/* ---- clocks ---- */

static uint64_t helper_now_us(fc_call_t *call, uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5) {
  (void)call;
  (void)r1;
  (void)r2;
  (void)r3;
  (void)r4;
  (void)r5;
  return clock_us != 0 ? clock_us() : 0;
}

static uint64_t helper_now_ms(fc_call_t *call, uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5) {
  return helper_now_us(call, r1, r2, r3, r4, r5) / 1000u;
}

int fc_register_default_helpers(void) {
  int bad = 0;
  bad |= fc_register_helper_checked(FC_HELPER_PRINTF, helper_printf, printf_args);
  bad |= fc_register_helper_checked(FC_HELPER_MEMCPY, helper_memcpy, memcpy_args);
  bad |= fc_register_helper(FC_HELPER_UNWIND, fc_helper_unwind);
  bad |= fc_register_helper(FC_HELPER_STORE_LOCAL, helper_store_local);
  bad |= fc_register_helper(FC_HELPER_STORE_GLOBAL, helper_store_global);
  bad |= fc_register_helper_checked(FC_HELPER_FETCH_LOCAL, helper_fetch_local, fetch_args);
  bad |= fc_register_helper_checked(FC_HELPER_FETCH_GLOBAL, helper_fetch_global, fetch_args);
  bad |= fc_register_helper(FC_HELPER_NOW_MS, helper_now_ms);
  bad |= fc_register_helper(FC_HELPER_NOW_US, helper_now_us);
  return bad != 0 ? -1 : 0;
}
