/* Image validation and loading (backends/thumb/IMAGE.md). Every check of the host-side reader
 * (backends/thumb/image.ts readImage) in the same order; an image failing one is never run. */
#include "fc.h"
#include "fc_internal.h"

#define IMAGE_VERSION 1u
#define HEADER_SIZE 64u
#define SIZED_HEADER_SIZE 68u /* HEADER_SIZE + the required context length */
#define SITE_SIZE 8u
#define SECTION_SIZE 16u
#define SECTION_WRITABLE 1u

#define H_MAGIC 0
#define H_VERSION 4
#define H_HEADER_SIZE 6
#define H_IMAGE_SIZE 8
#define H_CRC 12
#define H_CODE_OFF 16
#define H_CODE_SIZE 20
#define H_ENTRY 24
#define H_SITES_OFF 28
#define H_SITES_COUNT 32
#define H_SECTIONS_OFF 36
#define H_SECTIONS_COUNT 40
#define H_HELPERS_OFF 44
#define H_HELPERS_COUNT 48
#define H_NREGS 52
#define H_STACK_BASE 56
#define H_MEM_BASE 60
#define H_MEM_LEN 64

/* Compile-time checks that the run state matches the offsets generated code uses. */
FC_ASSERT(exit_lr, offsetof(fc_state_t, exit_lr) == FC_OFF_EXIT_LR);
FC_ASSERT(saved_sp, offsetof(fc_state_t, saved_sp) == FC_OFF_SAVED_SP);
FC_ASSERT(budget, offsetof(fc_state_t, budget) == FC_OFF_BUDGET);
FC_ASSERT(depth, offsetof(fc_state_t, depth) == FC_OFF_DEPTH);
FC_ASSERT(r10, offsetof(fc_state_t, r10) == FC_OFF_R10);
FC_ASSERT(fp_phys, offsetof(fc_state_t, fp_phys) == FC_OFF_FP_PHYS);
FC_ASSERT(helper_fn, offsetof(fc_state_t, helper_fn) == FC_OFF_HELPER_FN);
FC_ASSERT(div64_fn, offsetof(fc_state_t, div64_fn) == FC_OFF_DIV64_FN);
FC_ASSERT(fault_site, offsetof(fc_state_t, fault_site) == FC_OFF_FAULT_SITE);
FC_ASSERT(fault_addr_lo, offsetof(fc_state_t, fault_addr_lo) == FC_OFF_FAULT_ADDR_LO);
FC_ASSERT(fault_addr_hi, offsetof(fc_state_t, fault_addr_hi) == FC_OFF_FAULT_ADDR_HI);
FC_ASSERT(fault_info, offsetof(fc_state_t, fault_info) == FC_OFF_FAULT_INFO);
FC_ASSERT(nregions, offsetof(fc_state_t, nregions) == FC_OFF_NREGIONS);
FC_ASSERT(primask, offsetof(fc_state_t, primask) == FC_OFF_PRIMASK);
FC_ASSERT(tmp, offsetof(fc_state_t, tmp) == FC_OFF_TMP);
FC_ASSERT(regions, offsetof(fc_state_t, regions) == FC_OFF_REGIONS);
FC_ASSERT(regs, offsetof(fc_state_t, regs) == FC_OFF_REGS);
FC_ASSERT(frames, offsetof(fc_state_t, frames) == FC_OFF_FRAMES);
FC_ASSERT(size, sizeof(fc_state_t) == FC_OFF_SIZE);
FC_ASSERT(region_size, sizeof(fc_region_t) == FC_REGION_SIZE);
FC_ASSERT(native_below_state, offsetof(fc_container_t, state) == offsetof(fc_container_t, native_stack) + FC_NATIVE_STACK);

static uint32_t rd16(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

uint32_t fc_crc32(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c & 1u) ? 0xedb88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xffffffffu;
}

/* count entries of `each` bytes at `off` lie inside an image of `len` bytes (no overflow). */
static int within(uint32_t len, uint32_t off, uint32_t count, uint32_t each) {
  return off <= len && count <= (len - off) / each;
}

static uint32_t page_up(uint32_t n) {
  return (n + FC_PAGE - 1u) & ~(FC_PAGE - 1u);
}

void fc_init(fc_container_t *c, uint8_t *arena, size_t arena_len) {
  uint8_t *p = (uint8_t *)c;
  for (size_t i = 0; i < sizeof *c; i++) p[i] = 0;
  c->arena = arena;
  c->arena_len = arena_len;
  c->budget = FC_DEFAULT_BUDGET;
}

int fc_load(fc_container_t *c, const uint8_t *img, size_t len) {
  int status = fc__load_common(c, img, len, FC_IMAGE_MAGIC, 2u);
  if (status == FC_OK) c->run_fn = fc__run_thumb;
  return status;
}

int fc__load_common(fc_container_t *c, const uint8_t *img, size_t len, uint32_t magic, uint32_t unit) {
  c->loaded = 0;
  c->run_fn = 0;
  if (len < HEADER_SIZE) return FC_ERR_SHORT;
  if (rd32(img + H_MAGIC) != magic) return FC_ERR_MAGIC;
  if (rd16(img + H_VERSION) != IMAGE_VERSION) return FC_ERR_VERSION;
  uint32_t header_size = rd16(img + H_HEADER_SIZE);
  if (header_size != HEADER_SIZE && header_size != SIZED_HEADER_SIZE) return FC_ERR_FORMAT;
  if (len < header_size) return FC_ERR_SHORT;
  if (len > 0xffffffffu || rd32(img + H_IMAGE_SIZE) != (uint32_t)len) return FC_ERR_SIZE;
  /* CRC over the image with the CRC field read as zero. */
  uint32_t crc = 0xffffffffu;
  for (uint32_t i = 0; i < (uint32_t)len; i++) {
    crc ^= (i >= H_CRC && i < H_CRC + 4u) ? 0u : img[i];
    for (int k = 0; k < 8; k++) crc = (crc & 1u) ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
  }
  if ((crc ^ 0xffffffffu) != rd32(img + H_CRC)) return FC_ERR_CHECKSUM;
  uint32_t n = (uint32_t)len;
  uint32_t code_off = rd32(img + H_CODE_OFF), code_size = rd32(img + H_CODE_SIZE);
  if (code_off % 4u != 0 || code_off < header_size || !within(n, code_off, code_size, 1)) return FC_ERR_FORMAT;
  if (code_size == 0 || code_size % unit != 0) return FC_ERR_FORMAT;
  uint32_t entry = rd32(img + H_ENTRY);
  if (entry >= code_size || entry % unit != 0) return FC_ERR_FORMAT;
  uint32_t sites_off = rd32(img + H_SITES_OFF), nsites = rd32(img + H_SITES_COUNT);
  if (!within(n, sites_off, nsites, SITE_SIZE)) return FC_ERR_FORMAT;
  uint32_t prev = 0;
  for (uint32_t i = 0; i < nsites; i++) {
    uint32_t off = rd32(img + sites_off + i * SITE_SIZE);
    if (off > code_size || off % 2u != 0 || (i > 0 && off <= prev)) return FC_ERR_FORMAT;
    prev = off;
  }
  uint32_t sec_off = rd32(img + H_SECTIONS_OFF), nsec = rd32(img + H_SECTIONS_COUNT);
  if (nsec > FC_MAX_REGIONS - 2u) return FC_ERR_LIMIT;
  if (!within(n, sec_off, nsec, SECTION_SIZE)) return FC_ERR_FORMAT;
  uint32_t next = page_up(FC_STACK_BASE + FC_STACK_SIZE) + FC_PAGE;
  size_t need = FC_STACK_SIZE;
  for (uint32_t i = 0; i < nsec; i++) {
    const uint8_t *s = img + sec_off + i * SECTION_SIZE;
    uint32_t vbase = rd32(s), size = rd32(s + 4), flags = rd32(s + 8), data = rd32(s + 12);
    if ((flags & ~SECTION_WRITABLE) != 0) return FC_ERR_FORMAT;
    if (!within(n, data, size, 1)) return FC_ERR_FORMAT;
    if (vbase != next) return FC_ERR_LAYOUT;
    if (size > 0xf0000000u - vbase) return FC_ERR_LAYOUT;
    next = page_up(vbase + size) + FC_PAGE;
    if (flags & SECTION_WRITABLE) need += (size + 3u) & ~3u;
  }
  uint32_t helpers_off = rd32(img + H_HELPERS_OFF), nhelpers = rd32(img + H_HELPERS_COUNT);
  if (nhelpers > FC_MAX_HELPERS) return FC_ERR_LIMIT;
  if (!within(n, helpers_off, nhelpers, 4)) return FC_ERR_FORMAT;
  uint32_t nregs = rd32(img + H_NREGS);
  if (nregs < 11u || nregs > FC_MAX_VREGS) return FC_ERR_LIMIT;
  /* Bytecode has no fault sites and exactly the eBPF registers. */
  if (unit == 8u && (nsites != 0 || nregs != 11u)) return FC_ERR_FORMAT;
  if (rd32(img + H_STACK_BASE) != FC_STACK_BASE) return FC_ERR_LAYOUT;
  if (rd32(img + H_MEM_BASE) != next) return FC_ERR_LAYOUT;
  /* Code runs (or is read by words) in place: the format promises word alignment. */
  if (((uintptr_t)img & 3u) != 0) return FC_ERR_ALIGN;
  if (c->arena == 0 || c->arena_len < need) return FC_ERR_NOSPACE;
  c->image = img;
  c->code = img + code_off;
  c->code_size = code_size;
  c->entry = entry;
  c->sites = img + sites_off;
  c->nsites = nsites;
  c->sections = img + sec_off;
  c->nsections = nsec;
  c->helper_ids = img + helpers_off;
  c->nhelpers = nhelpers;
  c->nregs = nregs;
  c->mem_base = next;
  c->mem_len = header_size == SIZED_HEADER_SIZE ? rd32(img + H_MEM_LEN) : FC_ANY_CONTEXT_LEN;
  c->loaded = 1;
  return FC_OK;
}
