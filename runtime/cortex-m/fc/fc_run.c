/* Running a container: what every engine shares (region table set-up, the helper registry and
 * checked dispatch, fc_run), and the Thumb image runner (the entry trampoline, 64-bit division,
 * turning the generated code's fault record into an fc_fault_t). fc_run reaches the engine through
 * the pointer its loader set, so with --gc-sections a firmware links only the engines it loads. */
#include "fc.h"
#include "fc_internal.h"

/* ---- helpers ---- */

static struct {
  uint32_t id;
  fc_helper_fn fn;
  const fc_arg_t *args; /* NULL: unchecked */
} helper_table[FC_MAX_REGISTERED_HELPERS];
static uint32_t helper_count;

int fc_register_helper_checked(uint32_t id, fc_helper_fn fn, const fc_arg_t *args) {
  uint32_t i = 0;
  while (i < helper_count && helper_table[i].id != id) i++;
  if (i == helper_count) {
    if (helper_count >= FC_MAX_REGISTERED_HELPERS) return -1;
    helper_count++;
  }
  helper_table[i].id = id;
  helper_table[i].fn = fn;
  helper_table[i].args = args;
  return 0;
}

int fc_register_helper(uint32_t id, fc_helper_fn fn) {
  return fc_register_helper_checked(id, fn, 0);
}

void fc_clear_helpers(void) {
  helper_count = 0;
}

void fc_call_stop(fc_call_t *call, uint64_t r0) {
  call->action = 1;
  call->r0 = r0;
}

void fc_call_fail(fc_call_t *call) {
  call->action = 2;
}

const fc_region_t *fc__find_region(const fc_state_t *st, uint64_t addr, uint64_t size, int write, int *why) {
  *why = FC_OUT_OF_BOUNDS;
  if ((addr >> 32) != 0 || size == 0 || size > 0xffffffffu) return 0;
  uint32_t a = (uint32_t)addr;
  for (uint32_t i = 0; i < st->nregions; i++) {
    const fc_region_t *r = &st->regions[i];
    uint32_t len = r->cnt[0];
    if (a - r->vbase < len && size <= len - (a - r->vbase)) {
      if (write && !(r->flags & FC_REGION_WRITE)) {
        *why = FC_PERMISSION;
        return 0;
      }
      return r;
    }
  }
  return 0;
}

void *fc_call_mem(fc_call_t *call, uint64_t addr, size_t size, int write) {
  int why;
  const fc_region_t *r = fc__find_region(&call->container->state, addr, size, write, &why);
  return r != 0 ? r->host + ((uint32_t)addr - r->vbase) : 0;
}

const char *fc_call_str(fc_call_t *call, uint64_t addr) {
  int why;
  const fc_region_t *r = fc__find_region(&call->container->state, addr, 1, 0, &why);
  if (r == 0) return 0;
  const char *s = (const char *)r->host + ((uint32_t)addr - r->vbase);
  uint32_t room = r->cnt[0] - ((uint32_t)addr - r->vbase);
  for (uint32_t i = 0; i < room; i++) {
    if (s[i] == 0) return s;
  }
  return 0;
}

uint64_t fc_helper_unwind(fc_call_t *call, uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5) {
  (void)r2;
  (void)r3;
  (void)r4;
  (void)r5;
  if (r1 == 0) fc_call_stop(call, 0);
  return r1;
}

static fc_container_t *container_of_state(fc_state_t *st) {
  return (fc_container_t *)(void *)((uint8_t *)st - offsetof(fc_container_t, state));
}

#define REG(n) ((uint64_t)st->regs[n][1] << 32 | st->regs[n][0])

/* Checks a checked helper's declared pointer arguments; fills call->ptr. 0 when one is refused. */
static int check_args(fc_call_t *call, const fc_arg_t *args, const fc_state_t *st) {
  for (uint32_t k = 0; k < 5; k++) {
    const fc_arg_t *a = &args[k];
    if (a->kind == FC_ARG_KIND_ANY) continue;
    uint64_t addr = REG(k + 1);
    if (a->kind == FC_ARG_KIND_STR) {
      call->ptr[k] = (void *)(uintptr_t)fc_call_str(call, addr);
      if (call->ptr[k] == 0) return 0;
      continue;
    }
    uint64_t len = a->len_arg >= 1 && a->len_arg <= 5 ? REG(a->len_arg) : a->len;
    if (len == 0) continue;
    int why;
    const fc_region_t *r = fc__find_region(st, addr, len, a->kind == FC_ARG_KIND_WRITE, &why);
    if (r == 0) return 0;
    call->ptr[k] = r->host + ((uint32_t)addr - r->vbase);
  }
  return 1;
}

/* Called by generated code (sp = state, AAPCS) and the interpreter: r1..r5 in their slots, result
 * to r0's slot. */
int fc__call_helper(fc_state_t *st, uint32_t id_lo, uint32_t id_hi) {
  if (id_hi != 0) return FC_UNKNOWN_HELPER;
  uint32_t i = 0;
  while (i < helper_count && helper_table[i].id != id_lo) i++;
  if (i == helper_count) return FC_UNKNOWN_HELPER;
  fc_call_t call = {container_of_state(st), 0, 0, {0, 0, 0, 0, 0}};
  if (helper_table[i].args != 0 && !check_args(&call, helper_table[i].args, st)) return FC_HELPER;
  uint64_t r = helper_table[i].fn(&call, REG(1), REG(2), REG(3), REG(4), REG(5));
  if (call.action == 2) return FC_HELPER;
  if (call.action == 1) r = call.r0;
  st->regs[0][0] = (uint32_t)r;
  st->regs[0][1] = (uint32_t)(r >> 32);
  return call.action == 1 ? FC_STATUS_STOP : FC_OK;
}
#undef REG

/* RFC 9669 64-bit division: x / 0 = 0, x % 0 = x, INT64_MIN / -1 = INT64_MIN, INT64_MIN % -1 = 0. */
static void div64(fc_state_t *st, uint32_t op) {
  uint64_t a = (uint64_t)st->tmp[1] << 32 | st->tmp[0];
  uint64_t b = (uint64_t)st->tmp[3] << 32 | st->tmp[2];
  uint64_t r;
  const uint64_t min = 1ull << 63;
  switch (op) {
    case FC_DIV64_UDIV: r = b == 0 ? 0 : a / b; break;
    case FC_DIV64_UREM: r = b == 0 ? a : a % b; break;
    case FC_DIV64_SDIV:
      if (b == 0) r = 0;
      else if (a == min && b == ~0ull) r = a;
      else r = (uint64_t)((int64_t)a / (int64_t)b);
      break;
    default:
      if (b == 0) r = a;
      else if (a == min && b == ~0ull) r = 0;
      else r = (uint64_t)((int64_t)a % (int64_t)b);
      break;
  }
  st->tmp[0] = (uint32_t)r;
  st->tmp[1] = (uint32_t)(r >> 32);
}

/* ---- the trampoline ----
 * fc_enter(state, code | 1): saves what AAPCS asks a callee to keep (r4-r11, lr, and sp, which
 * the generated code replaces with the state pointer), runs the code and returns its status. The
 * code returns with `ldr pc, [sp, #exit_lr]` and sp = state, also from a fault deep in calls. */
__attribute__((naked, noinline)) static uint32_t fc_enter(fc_state_t *st __attribute__((unused)), uint32_t code __attribute__((unused))) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "mov r2, sp\n\t"
      "str r2, [r0, #4]\n\t"
      "mov sp, r0\n\t"
      "blx r1\n\t"
      "ldr r1, [sp, #4]\n\t"
      "mov sp, r1\n\t"
      "pop {r4-r11, pc}\n\t");
}

static void set_region(fc_region_t *r, uint32_t vbase, uint8_t *host, uint32_t len, int writable) {
  static const uint32_t sizes[4] = {1, 2, 4, 8};
  r->vbase = vbase;
  r->host = host;
  r->delta = (uint32_t)(uintptr_t)host - vbase;
  r->flags = writable ? FC_REGION_WRITE : 0;
  for (int i = 0; i < 4; i++) r->cnt[i] = len >= sizes[i] ? len - sizes[i] + 1u : 0;
}

static uint32_t site_pc(const fc_container_t *c, uint32_t ret) {
  uint32_t off = (ret & ~1u) - (uint32_t)(uintptr_t)c->code;
  uint32_t lo = 0, hi = c->nsites;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    uint32_t o = rd32(c->sites + mid * 8u);
    if (o == off) return rd32(c->sites + mid * 8u + 4u);
    if (o < off) lo = mid + 1;
    else hi = mid;
  }
  return 0xffffffffu;
}

int fc_run(fc_container_t *c, void *ctx, size_t ctx_len, uint64_t *r0) {
  if (!c->loaded || c->run_fn == 0) return FC_ERR_NOT_LOADED;
  /* Every region lies in [0x10000, 0xf0000000): the loader checks the sections, this the context
   * (the interpreter's 32-bit address test relies on it). */
  if (ctx != 0 && ctx_len > 0xf0000000u - c->mem_base) return FC_ERR_LIMIT;
  /* Code specialised for one context length has accesses proven only for that length: with any
   * other it must not start. No context is a context of length 0 (r2 = 0). */
  if (c->mem_len != FC_ANY_CONTEXT_LEN && (ctx != 0 ? (uint32_t)ctx_len : 0u) != c->mem_len) return FC_ERR_CONTEXT;
  return c->run_fn(c, ctx, ctx_len, r0);
}

void fc__setup(fc_container_t *c, void *ctx, size_t ctx_len) {
  fc_state_t *st = &c->state;
  uint8_t *stack = c->arena;
  if (((uintptr_t)stack & 3u) == 0) {
    for (uint32_t i = 0; i < FC_STACK_SIZE / 4u; i++) ((uint32_t *)(void *)stack)[i] = 0;
  } else {
    for (uint32_t i = 0; i < FC_STACK_SIZE; i++) stack[i] = 0;
  }
  set_region(&st->regions[0], FC_STACK_BASE, stack, FC_STACK_SIZE, 1);
  uint8_t *free = c->arena + FC_STACK_SIZE;
  for (uint32_t i = 0; i < c->nsections; i++) {
    const uint8_t *s = c->sections + i * 16u;
    uint32_t vbase = rd32(s), size = rd32(s + 4), writable = rd32(s + 8) & 1u;
    const uint8_t *init = c->image + rd32(s + 12);
    uint8_t *host = (uint8_t *)(uintptr_t)init; /* read-only sections stay in the image */
    if (writable) {
      host = free;
      for (uint32_t k = 0; k < size; k++) host[k] = init[k];
      free += (size + 3u) & ~3u;
    }
    set_region(&st->regions[1 + i], vbase, host, size, (int)writable);
  }
  uint32_t mem_len = ctx != 0 ? (uint32_t)ctx_len : 0;
  set_region(&st->regions[1 + c->nsections], c->mem_base, (uint8_t *)ctx, mem_len, 1);
  st->nregions = 2 + c->nsections;

  for (uint32_t r = 0; r < c->nregs; r++) st->regs[r][0] = st->regs[r][1] = 0;
  st->regs[1][0] = ctx != 0 ? c->mem_base : 0;
  st->regs[2][0] = mem_len;
}

int fc__run_thumb(fc_container_t *c, void *ctx, size_t ctx_len, uint64_t *r0) {
  fc_state_t *st = &c->state;
  uint8_t *stack = c->arena;
  fc__setup(c, ctx, ctx_len);
  uint32_t budget = c->budget > 0xffffffffull ? 0xffffffffu : (uint32_t)c->budget;
  st->budget = budget;
  st->depth = 0;
  st->r10 = FC_STACK_BASE + FC_STACK_SIZE;
  st->fp_phys = (uint32_t)(uintptr_t)(stack + FC_STACK_SIZE - FC_STACK_FRAME);
  st->helper_fn = fc__call_helper;
  st->div64_fn = div64;
  st->fault_site = 0;
  st->fault_addr_lo = st->fault_addr_hi = 0;
  st->fault_info = 0;

  FC_TRACE_ENTER();
  uint32_t status = fc_enter(st, (uint32_t)(uintptr_t)(c->code + c->entry) | 1u);
  FC_TRACE_EXIT();
  c->steps = budget - st->budget;
  if (status == FC_OK) {
    if (r0 != 0) *r0 = (uint64_t)st->regs[0][1] << 32 | st->regs[0][0];
    return FC_OK;
  }
  c->fault.kind = status;
  c->fault.pc = site_pc(c, st->fault_site);
  c->fault.has_addr = (st->fault_info & FC_INFO_HAS_ADDR) != 0;
  c->fault.write = (st->fault_info & FC_INFO_WRITE) != 0;
  c->fault.size = st->fault_info & 0xffu;
  c->fault.addr = (uint64_t)st->fault_addr_hi << 32 | st->fault_addr_lo;
  return (int)status;
}
