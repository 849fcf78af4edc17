/* Test driver for crib_atomic_write_file (native/common/atomic-file.c):
 *
 *   atomic-file-driver PATH MODE     writes stdin to PATH with MODE (octal)
 *
 * The umask is set to 077 first, so a test sees that MODE is applied exactly. Errors:
 * "atomic-file-driver: <message>" on stderr, exit 1. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crib-atomic-file.h"

#define INPUT_MAX (64u << 20)

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: atomic-file-driver PATH MODE < data\n");
    return 2;
  }
  char *end;
  unsigned long mode = strtoul(argv[2], &end, 8);
  if (*end || mode > 07777) {
    fprintf(stderr, "atomic-file-driver: MODE `%s`: expected octal\n", argv[2]);
    return 2;
  }
  char *buf = malloc(INPUT_MAX);
  if (!buf) return 2;
  size_t len = 0;
  for (;;) {
    ssize_t n = read(0, buf + len, INPUT_MAX - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      perror("atomic-file-driver: read stdin");
      return 2;
    }
    if (n == 0) break;
    len += (size_t)n;
    if (len == INPUT_MAX) {
      fprintf(stderr, "atomic-file-driver: input over %u bytes\n", INPUT_MAX);
      return 2;
    }
  }
  umask(077);
  crib_err err = {0};
  if (crib_atomic_write_file(argv[1], buf, len, (mode_t)mode, &err) < 0) {
    crib_err_print("atomic-file-driver", &err);
    return 1;
  }
  return 0;
}
