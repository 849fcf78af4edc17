/* Tries setuid(0) and prints the effective uid: "euid=0" means the file made its caller root,
 * as a setuid-root binary or through a CAP_SETUID file capability. Static, so the same file runs
 * on the host and in a busybox container (no libc there). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
  int rc = setuid(0);
  const char *how = rc == 0 ? "ok" : strerror(errno);
  if (printf("euid=%d setuid(0)=%s\n", (int)geteuid(), how) < 0) return 1;
  return 0;
}
