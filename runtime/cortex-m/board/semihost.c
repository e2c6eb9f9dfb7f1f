#include "semihost.h"

int32_t sh_call(uint32_t op, const void *param) {
  register uint32_t r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = param;
  /* "memory": the host reads and writes the parameter block and buffers behind the compiler's back. */
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return (int32_t)r0;
}

void sh_putc(char c) { sh_call(SH_SYS_WRITEC, &c); }

void sh_puts(const char *s) { sh_call(SH_SYS_WRITE0, s); }

void sh_puthex(uint32_t v) {
  char buf[11];
  buf[0] = '0';
  buf[1] = 'x';
  for (int i = 0; i < 8; i++) {
    uint32_t nib = (v >> (28 - 4 * i)) & 0xfu;
    buf[2 + i] = (char)(nib < 10 ? '0' + nib : 'a' + nib - 10);
  }
  buf[10] = 0;
  sh_puts(buf);
}

void sh_putdec64(uint64_t v) {
  char buf[21];
  int i = 20;
  buf[i] = 0;
  do {
    buf[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  sh_puts(&buf[i]);
}

void sh_putdec(uint32_t v) { sh_putdec64(v); }

void sh_putint(int32_t v) {
  if (v < 0) {
    sh_putc('-');
    sh_putdec(0u - (uint32_t)v);
  } else {
    sh_putdec((uint32_t)v);
  }
}

static uint32_t str_len(const char *s) {
  uint32_t n = 0;
  while (s[n] != 0) n++;
  return n;
}

int32_t sh_open(const char *path, int mode) {
  uint32_t block[3] = {(uint32_t)path, (uint32_t)mode, str_len(path)};
  return sh_call(SH_SYS_OPEN, block);
}

int32_t sh_close(int32_t fd) {
  uint32_t block[1] = {(uint32_t)fd};
  return sh_call(SH_SYS_CLOSE, block);
}

int32_t sh_flen(int32_t fd) {
  uint32_t block[1] = {(uint32_t)fd};
  return sh_call(SH_SYS_FLEN, block);
}

int32_t sh_read(int32_t fd, void *buf, uint32_t len) {
  uint32_t block[3] = {(uint32_t)fd, (uint32_t)buf, len};
  int32_t unread = sh_call(SH_SYS_READ, block);
  if (unread < 0 || (uint32_t)unread > len) return -1;
  return (int32_t)(len - (uint32_t)unread);
}

int32_t sh_load_file(const char *path, void *buf, uint32_t cap) {
  int32_t fd = sh_open(path, SH_OPEN_RB);
  if (fd < 0) return -1;
  int32_t len = sh_flen(fd);
  int32_t result = len;
  if (len < 0) {
    result = -1;
  } else if ((uint32_t)len > cap) {
    result = -2;
  } else {
    uint32_t done = 0;
    while (done < (uint32_t)len) {
      int32_t got = sh_read(fd, (uint8_t *)buf + done, (uint32_t)len - done);
      if (got <= 0) {
        result = -1;
        break;
      }
      done += (uint32_t)got;
    }
  }
  sh_close(fd);
  return result;
}

int32_t sh_cmdline(char *buf, uint32_t cap) {
  uint32_t block[2] = {(uint32_t)buf, cap};
  if (cap == 0 || sh_call(SH_SYS_GET_CMDLINE, block) != 0) return -1;
  /* The host rewrites block[1] with the length it stored (without the NUL). */
  if (block[1] >= cap) return -1;
  buf[block[1]] = 0;
  return (int32_t)block[1];
}

int sh_split_args(char *buf, char **argv, int max) {
  int argc = 0;
  char *p = buf;
  while (*p != 0) {
    while (*p == ' ') *p++ = 0;
    if (*p == 0) break;
    if (argc < max) argv[argc] = p;
    argc++;
    while (*p != 0 && *p != ' ') p++;
  }
  return argc;
}

void sh_exit(uint32_t code) {
  uint32_t block[2] = {SH_ADP_STOPPED_APPLICATION_EXIT, code};
  sh_call(SH_SYS_EXIT_EXTENDED, block);
  /* Only reached when the host ignores the exit request: never return into random code. */
  for (;;) __asm__ volatile("bkpt 0x00");
}
