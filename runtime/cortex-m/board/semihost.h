/* ARM semihosting (bkpt 0xab) for the emulated board: console output, host files, command line
 * and exit codes. QEMU implements these when started with -semihosting-config enable=on. */
#ifndef FEMTO_SEMIHOST_H
#define FEMTO_SEMIHOST_H

#include <stdint.h>
#include <stddef.h>

#define SH_SYS_OPEN 0x01
#define SH_SYS_CLOSE 0x02
#define SH_SYS_WRITEC 0x03
#define SH_SYS_WRITE0 0x04
#define SH_SYS_READ 0x06
#define SH_SYS_FLEN 0x0c
#define SH_SYS_GET_CMDLINE 0x15
#define SH_SYS_EXIT_EXTENDED 0x20

#define SH_ADP_STOPPED_APPLICATION_EXIT 0x20026u

/* SYS_OPEN modes (ISO C fopen modes, in the order the semihosting spec numbers them). */
#define SH_OPEN_RB 1
#define SH_OPEN_WB 5

/* Raw call: op in r0, parameter (block address or value) in r1, result from r0. */
int32_t sh_call(uint32_t op, const void *param);

void sh_putc(char c);
void sh_puts(const char *s);
/* Unsigned 32-bit hex, always 8 digits with a 0x prefix: fixed width keeps reports greppable. */
void sh_puthex(uint32_t v);
void sh_putdec(uint32_t v);
void sh_putdec64(uint64_t v);
void sh_putint(int32_t v);

/* Returns a host file handle (>= 0) or -1. Paths are relative to QEMU's working directory. */
int32_t sh_open(const char *path, int mode);
int32_t sh_close(int32_t fd);
/* Length in bytes of an open file, or -1. */
int32_t sh_flen(int32_t fd);
/* Reads up to len bytes; returns the number of bytes read (the host reports the unread count). */
int32_t sh_read(int32_t fd, void *buf, uint32_t len);

/* Reads a whole host file into buf. Returns its length, -1 if it cannot be opened or read,
 * -2 if it does not fit in cap bytes. */
int32_t sh_load_file(const char *path, void *buf, uint32_t cap);

/* Copies the command line (arguments joined by single spaces) into buf, NUL-terminated.
 * Returns its length or -1. */
int32_t sh_cmdline(char *buf, uint32_t cap);

/* Splits buf in place on spaces and fills at most max entries of argv. Returns the number of
 * arguments found, which exceeds max when some did not fit. */
int sh_split_args(char *buf, char **argv, int max);

/* Ends the QEMU process with this exit status (the host sees code & 0xff). */
void sh_exit(uint32_t code) __attribute__((noreturn));

#endif
