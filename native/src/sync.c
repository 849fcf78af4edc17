#include "sync.h"

#include "crib-fd-passing.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int crib_sync_pair(int fds[2], crib_err *err) {
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
    return crib_fail(err, errno, "socketpair");
  return 0;
}

static int send_msg(int fd, const crib_sync_msg *m, int pass_fd, crib_err *err) {
  if (crib_send_with_fd(fd, m, sizeof *m, pass_fd) < 0) return crib_fail(err, errno, "sync socket: send");
  return 0;
}

int crib_sync_send(int fd, int type, int value, int pass_fd, crib_err *err) {
  crib_sync_msg m = {.type = type, .value = value};
  return send_msg(fd, &m, pass_fd, err);
}

void crib_sync_send_error(int fd, const crib_err *e) {
  crib_sync_msg m = {.type = CRIB_SYNC_ERROR, .errnum = e->errnum};
  snprintf(m.text, sizeof m.text, "%s", e->msg);
  crib_err ignored;
  send_msg(fd, &m, -1, &ignored);
}

void crib_sync_send_warning(int fd, const char *text) {
  crib_sync_msg m = {.type = CRIB_SYNC_WARNING};
  snprintf(m.text, sizeof m.text, "%s", text);
  crib_err ignored;
  send_msg(fd, &m, -1, &ignored);
}

static int recv_flags(int fd, crib_sync_msg *m, int *recv_fd, int flags, crib_err *err);

int crib_sync_recv(int fd, crib_sync_msg *m, int *recv_fd, crib_err *err) {
  return recv_flags(fd, m, recv_fd, 0, err);
}

void crib_sync_prefer_child_error(int fd, crib_err *err) {
  crib_sync_msg m;
  crib_err ignored;
  int got;
  while (recv_flags(fd, &m, &got, MSG_DONTWAIT, &ignored) == 0) {
    if (got >= 0) close(got);
    if (m.type == CRIB_SYNC_ERROR) {
      err->errnum = m.errnum;
      snprintf(err->msg, sizeof err->msg, "%s", m.text);
      return;
    }
  }
}

static int recv_flags(int fd, crib_sync_msg *m, int *recv_fd, int flags, crib_err *err) {
  struct iovec iov = {.iov_base = m, .iov_len = sizeof *m};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                      .msg_controllen = sizeof u.buf};
  if (recv_fd) *recv_fd = -1;
  ssize_t n;
  /* ECONNRESET: the child exited with our ACK unread. The error is reported once and then
   * cleared; what the child sent before exiting (its error report) is still queued. */
  int resets = 0;
  do n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | flags);
  while (n < 0 && (errno == EINTR || (errno == ECONNRESET && resets++ == 0)));
  if (n < 0) return crib_fail(err, errno, "sync socket: receive");
  if (n == 0) return crib_fail(err, 0, "container process exited during setup without a report");
  if ((size_t)n != sizeof *m) return crib_fail(err, 0, "sync socket: short message (%zd bytes)", n);
  m->text[sizeof m->text - 1] = '\0';
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int got;
      memcpy(&got, CMSG_DATA(c), sizeof got);
      if (recv_fd) *recv_fd = got;
      else close(got);
    }
  }
  return 0;
}
