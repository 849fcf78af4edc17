/* Unix socket helpers. sun_path holds 107 bytes, and the daemon's per-container directories can
 * be deeper than that, so the socket is always addressed through an O_PATH fd of its directory
 * (/proc/self/fd/<n>/<name>), which is short whatever the real path. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int short_address(const char *path, struct sockaddr_un *addr, int *dirfd, crib_err *err) {
  char dir[PATH_MAX], base[PATH_MAX];
  if (strlen(path) >= PATH_MAX) return crib_fail(err, ENAMETOOLONG, "socket path `%s`", path);
  strcpy(dir, path);
  strcpy(base, path);
  const char *d = dirname(dir);
  const char *b = basename(base);
  if (strlen(b) > 64) return crib_fail(err, ENAMETOOLONG, "socket name `%s`", b);
  *dirfd = open(d, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (*dirfd < 0) return crib_fail(err, errno, "open directory `%s` of socket", d);
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  snprintf(addr->sun_path, sizeof addr->sun_path, "/proc/self/fd/%d/%s", *dirfd, b);
  return 0;
}

int unix_listen(const char *path, int type, mode_t mode, crib_err *err) {
  struct sockaddr_un addr;
  int dirfd;
  if (short_address(path, &addr, &dirfd, err) < 0) return -1;
  struct stat st;
  /* A leftover socket from an earlier monitor of the same path is stale (a live one would be
   * ours); anything else at that path is not ours to delete. */
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      close(dirfd);
      return crib_fail(err, EEXIST, "socket path `%s` exists and is not a socket", path);
    }
    unlink(path);
  }
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    close(dirfd);
    return crib_fail(err, errno, "socket AF_UNIX for `%s`", path);
  }
  /* umask, not chmod after bind: there must be no moment when others can connect. */
  mode_t old = umask(0777 & ~mode);
  int rc = bind(fd, (struct sockaddr *)&addr, sizeof addr);
  int saved = errno;
  umask(old);
  close(dirfd);
  if (rc < 0) {
    close(fd);
    return crib_fail(err, saved, "bind `%s`", path);
  }
  if (listen(fd, 16) < 0) {
    saved = errno;
    close(fd);
    unlink(path);
    return crib_fail(err, saved, "listen `%s`", path);
  }
  return fd;
}

int recv_fd(int sock, crib_err *err) {
  char data[256];
  struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                       .msg_controllen = sizeof ctl.buf};
  ssize_t n;
  do n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return crib_fail(err, errno, "recvmsg on console socket");
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
      c->cmsg_len != CMSG_LEN(sizeof(int)))
    return crib_fail(err, 0, "console socket: the runtime sent no terminal fd");
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}
