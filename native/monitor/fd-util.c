/* Small fd helpers shared by both monitor modes. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int set_nonblock(int fd, crib_err *err) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return crib_fail(err, errno, "fcntl O_NONBLOCK fd %d", fd);
  return 0;
}

int set_cloexec(int fd, crib_err *err) {
  int fl = fcntl(fd, F_GETFD);
  if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
    return crib_fail(err, errno, "fcntl FD_CLOEXEC fd %d", fd);
  return 0;
}

/* The monitor outlives its caller: holding the caller's stdio pipes open would make a caller that
 * waits for them to close hang, so 0, 1 and 2 become /dev/null. */
int devnull_stdio(crib_err *err) {
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0) return crib_fail(err, errno, "open `/dev/null`");
  for (int i = 0; i < 3; i++)
    if (dup2(fd, i) < 0) return crib_fail(err, errno, "dup2 /dev/null to %d", i);
  if (fd > 2) close(fd);
  return 0;
}

/* Close every fd >= first except keep (-1 for none). close_range is one syscall instead of a
 * walk over /proc/self/fd. */
void close_fds_from(int first, int keep) {
  if (keep >= first) {
    if (keep > first) close_range((unsigned)first, (unsigned)keep - 1, 0);
    close_range((unsigned)keep + 1, ~0U, 0);
  } else {
    close_range((unsigned)first, ~0U, 0);
  }
}
