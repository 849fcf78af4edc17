/* Test helper, the "second container" of the mount-race tests: swaps two names in a directory
 * as fast as it can (renameat2 RENAME_EXCHANGE, one atomic syscall per swap), so that anyone
 * resolving a path through that directory sees either entry at any moment. Typically one entry
 * is what a runtime expects (a directory, a file) and the other a symlink to something sensitive.
 *
 *   path-racer DIR A B
 *
 * Stops when DIR/path-racer.stop appears (checked every 256 swaps), leaves A and B as they
 * started (an even number of swaps), prints "swaps N" and exits 0. Built with `cc -static` so it
 * runs in a busybox image. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: path-racer DIR A B\n");
    return 2;
  }
  int dir = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    fprintf(stderr, "path-racer: open %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  printf("racing %s/%s <-> %s\n", argv[1], argv[2], argv[3]);
  fflush(stdout);
  unsigned long long swaps = 0;
  for (;;) {
    if (renameat2(dir, argv[2], dir, argv[3], RENAME_EXCHANGE) < 0) {
      fprintf(stderr, "path-racer: exchange %s and %s: %s\n", argv[2], argv[3], strerror(errno));
      return 1;
    }
    swaps++;
    if ((swaps & 255) == 0 && faccessat(dir, "path-racer.stop", F_OK, AT_SYMLINK_NOFOLLOW) == 0) break;
  }
  printf("swaps %llu\n", swaps);
  return 0;
}
