/* Runs a command (typically `ip`) inside a pinned network namespace, so the daemon never has to
 * setns in its own threads and needs no /var/run/netns name for the pod. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include "pinns.h"

int pinns_netns_exec(const char *file, char *const argv[], crib_err *err) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return crib_fail(err, errno, "open `%s`", file);
  if (setns(fd, CLONE_NEWNET) < 0) {
    int saved = errno;
    (void)close(fd); /* reporting the setns failure */
    return crib_fail(err, saved, "setns `%s` (is it a pinned network namespace?)", file);
  }
  if (close(fd) < 0) return crib_fail(err, errno, "close `%s`", file);
  execvp(argv[0], argv);
  return crib_fail(err, errno, "exec `%s`", argv[0]);
}
