#include "terminal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "crib-fd-passing.h"
#include "spec.h"

int crib_pty_open(const char *ptmx_path, int *master, char *slave_path, size_t n, crib_err *err) {
  int fd = open(ptmx_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return crib_fail(err, errno, "open `%s`", ptmx_path);
  int unlock = 0, num = 0;
  if (ioctl(fd, TIOCSPTLCK, &unlock) < 0) {
    int e = errno;
    close(fd);
    return crib_fail(err, e, "unlock pty");
  }
  if (ioctl(fd, TIOCGPTN, &num) < 0) {
    int e = errno;
    close(fd);
    return crib_fail(err, e, "get pty number");
  }
  snprintf(slave_path, n, "/dev/pts/%d", num);
  *master = fd;
  return 0;
}

int crib_pty_set_size(int fd, json_t *size, crib_err *err) {
  if (!json_is_object(size)) return 0;
  struct winsize ws = {.ws_row = (unsigned short)crib_json_int(size, "height", 0),
                       .ws_col = (unsigned short)crib_json_int(size, "width", 0)};
  if (ioctl(fd, TIOCSWINSZ, &ws) < 0) return crib_fail(err, errno, "set console size");
  return 0;
}

int crib_pty_become_stdio(int slave, crib_err *err) {
  if (setsid() < 0) return crib_fail(err, errno, "setsid");
  if (ioctl(slave, TIOCSCTTY, 0) < 0) return crib_fail(err, errno, "set controlling terminal");
  for (int i = 0; i < 3; i++)
    if (dup2(slave, i) < 0) return crib_fail(err, errno, "dup2 pty onto fd %d", i);
  if (slave > 2) close(slave);
  return 0;
}

int crib_console_socket_send(const char *path, int fd, const char *name, crib_err *err) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path)
    return crib_fail(err, ENAMETOOLONG, "console socket `%s`", path);
  strcpy(sa.sun_path, path);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return crib_fail(err, errno, "socket");
  if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(s);
    return crib_fail(err, e, "connect console socket `%s`", path);
  }
  ssize_t n = crib_send_with_fd(s, name, strlen(name), fd);
  int e = errno;
  close(s);
  if (n < 0) return crib_fail(err, e, "send pty to console socket `%s`", path);
  return 0;
}
