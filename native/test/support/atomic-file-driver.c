/* Test driver for crib_atomic_write_file and crib_atomic_replace_file (native/common/atomic-file.c):
 *
 *   atomic-file-driver PATH MODE [--no-sync]   writes stdin to PATH with MODE (octal); with
 *                                              --no-sync through crib_atomic_replace_file
 *
 * The umask is set to 077 first, so a test sees that MODE is applied exactly. On success it
 * prints "fsyncs <n>": linked with -Wl,--wrap=fsync, every fsync the writer makes is counted
 * here. Errors: "atomic-file-driver: <message>" on stderr, exit 1. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crib-atomic-file.h"

#define INPUT_MAX (64u << 20)

static unsigned fsyncs;

int __real_fsync(int fd);
int __wrap_fsync(int fd);
int __wrap_fsync(int fd) {
  fsyncs++;
  return __real_fsync(fd);
}

int main(int argc, char **argv) {
  bool durable = !(argc == 4 && strcmp(argv[3], "--no-sync") == 0);
  if (argc != 3 && durable) {
    fprintf(stderr, "usage: atomic-file-driver PATH MODE [--no-sync] < data\n");
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
  int rc = durable ? crib_atomic_write_file(argv[1], buf, len, (mode_t)mode, &err)
                   : crib_atomic_replace_file(argv[1], buf, len, (mode_t)mode, &err);
  if (rc < 0) {
    crib_err_print("atomic-file-driver", &err);
    return 1;
  }
  printf("fsyncs %u\n", fsyncs);
  return 0;
}
