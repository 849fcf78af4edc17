/* crib-pinns port-forward FILE PORT: one forwarded connection of a CRI PortForward. Joins the
 * pod's pinned network namespace, connects to 127.0.0.1:PORT (then [::1]:PORT, as kubelet's
 * forwarders do), and relays stdin -> socket and socket -> stdout until both directions are
 * done. Each direction ends on its own: EOF on stdin half-closes the socket (SHUT_WR), EOF from
 * the socket closes stdout, so request/response protocols that rely on half-close work.
 * The relay is non-blocking with one bounded buffer per direction: a peer that stops reading
 * stalls only its own direction, never the other one (no deadlock on full-duplex traffic).
 * Errors go to stderr as "crib-pinns: port-forward: ..." with exit status 1; the daemon copies
 * them to the client's error stream. The relay dies with its parent (PR_SET_PDEATHSIG). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pinns.h"

#define RELAY_BUF (256 * 1024)
/* Socket buffers asked for on the daemon's side (its stdio are socketpairs): fewer wakeups per
 * megabyte on bulk transfers. A smaller grant (net.core.*mem_max) is fine. */
#define STDIO_SOCKBUF (1024 * 1024)

struct direction {
  int from, to;
  char buf[RELAY_BUF];
  size_t len, off;
  bool eof;  /* nothing more will be read from `from` */
  bool done; /* eof and everything written; `to` has been shut/closed */
};

static int set_nonblock(int fd, crib_err *err) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return crib_fail(err, errno, "fcntl F_GETFL fd %d", fd);
  if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return crib_fail(err, errno, "fcntl F_SETFL fd %d", fd);
  return 0;
}

static int connect_to(int family, int port, crib_err *err) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return crib_fail(err, errno, "socket %s", family == AF_INET ? "AF_INET" : "AF_INET6");
  int rc;
  if (family == AF_INET) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = connect(fd, (struct sockaddr *)&a, sizeof a);
  } else {
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((unsigned short)port)};
    a.sin6_addr = in6addr_loopback;
    rc = connect(fd, (struct sockaddr *)&a, sizeof a);
  }
  if (rc < 0) {
    int saved = errno;
    (void)close(fd); /* reporting the connect failure */
    return crib_fail(err, saved, "connect %s:%d", family == AF_INET ? "127.0.0.1" : "[::1]", port);
  }
  return fd;
}

/* Moves what is available in one direction; returns -1 with err set on a real failure. */
static int pump(struct direction *d, bool to_is_socket, crib_err *err) {
  if (d->len == 0 && !d->eof) {
    ssize_t n = read(d->from, d->buf, sizeof d->buf);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return 0;
      if (errno == ECONNRESET) {
        d->eof = true;
        return crib_fail(err, errno, "read from the pod's port");
      }
      return crib_fail(err, errno, "read fd %d", d->from);
    }
    if (n == 0) d->eof = true;
    d->len = (size_t)n;
    d->off = 0;
  }
  while (d->len > 0) {
    ssize_t n = write(d->to, d->buf + d->off, d->len);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return 0;
      /* The reader went away: this direction is over; drop what is buffered. */
      if (errno == EPIPE || errno == ECONNRESET) {
        d->len = 0;
        d->eof = true;
        break;
      }
      return crib_fail(err, errno, "write fd %d", d->to);
    }
    d->off += (size_t)n;
    d->len -= (size_t)n;
  }
  if (d->eof && d->len == 0 && !d->done) {
    d->done = true;
    if (to_is_socket) {
      if (shutdown(d->to, SHUT_WR) < 0 && errno != ENOTCONN) return crib_fail(err, errno, "shutdown SHUT_WR");
    } else if (close(d->to) < 0) {
      return crib_fail(err, errno, "close stdout");
    }
  }
  return 0;
}

static int relay(int sock, crib_err *err) {
  static struct direction in, out; /* 128 KiB of buffers: keep them off the stack */
  in = (struct direction){.from = STDIN_FILENO, .to = sock};
  out = (struct direction){.from = sock, .to = STDOUT_FILENO};
  int sz = STDIO_SOCKBUF;
  /* ENOTSOCK when stdio are plain pipes: nothing to tune then. */
  (void)setsockopt(STDIN_FILENO, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  (void)setsockopt(STDOUT_FILENO, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  if (set_nonblock(STDIN_FILENO, err) < 0 || set_nonblock(STDOUT_FILENO, err) < 0 ||
      set_nonblock(sock, err) < 0)
    return -1;
  struct timespec grace_end = {0};
  bool grace_started = false;
  while (!in.done || !out.done) {
    struct pollfd p[2];
    struct direction *dirs[2] = {&in, &out};
    nfds_t n = 0;
    for (int i = 0; i < 2; i++) {
      struct direction *d = dirs[i];
      if (d->done) continue;
      if (d->len > 0)
        p[n++] = (struct pollfd){.fd = d->to, .events = POLLOUT};
      else if (!d->eof)
        p[n++] = (struct pollfd){.fd = d->from, .events = POLLIN};
      else
        p[n++] = (struct pollfd){.fd = d->to, .events = POLLOUT};
    }
    /* Once the pod's side has closed, the client gets a short grace period to finish sending
     * (containerd allows one second), so a client that never half-closes does not hold the
     * relay open forever. */
    int timeout = -1;
    if (out.done && !in.done) {
      struct timespec now;
      if (clock_gettime(CLOCK_MONOTONIC, &now) < 0) return crib_fail(err, errno, "clock_gettime");
      if (!grace_started) {
        grace_end = now;
        grace_end.tv_sec += 1;
        grace_started = true;
      }
      long left = (grace_end.tv_sec - now.tv_sec) * 1000 + (grace_end.tv_nsec - now.tv_nsec) / 1000000;
      if (left <= 0) break;
      timeout = (int)left;
    }
    if (poll(p, n, timeout) < 0) {
      if (errno == EINTR) continue;
      return crib_fail(err, errno, "poll");
    }
    if (pump(&in, true, err) < 0) return -1;
    if (pump(&out, false, err) < 0) return -1;
  }
  return 0;
}

int pinns_port_forward(const char *file, const char *port_text, crib_err *err) {
  char *end = NULL;
  errno = 0;
  long port = strtol(port_text, &end, 10);
  if (errno != 0 || end == port_text || *end != '\0' || port < 1 || port > 65535)
    return crib_fail(err, 0, "port-forward: port `%s` is not in 1..65535", port_text);
  /* A relay must not outlive the daemon that holds the client's end. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) return crib_fail(err, errno, "prctl PR_SET_PDEATHSIG");
  if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) return crib_fail(err, errno, "ignore SIGPIPE");
  int nsfd = open(file, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) return crib_fail(err, errno, "port-forward: open `%s`", file);
  if (setns(nsfd, CLONE_NEWNET) < 0) {
    int saved = errno;
    (void)close(nsfd); /* reporting the setns failure */
    return crib_fail(err, saved, "port-forward: setns `%s` (is it a pinned network namespace?)", file);
  }
  if (close(nsfd) < 0) return crib_fail(err, errno, "close `%s`", file);

  crib_err v4 = {0}, v6 = {0};
  int sock = connect_to(AF_INET, (int)port, &v4);
  if (sock < 0) sock = connect_to(AF_INET6, (int)port, &v6);
  if (sock < 0)
    return crib_fail(err, 0, "port-forward: failed to connect to localhost:%ld inside the pod's network namespace: IPv4: %s; IPv6: %s",
                     port, v4.msg, v6.msg);
  int rc = relay(sock, err);
  if (rc < 0) crib_err_wrap(err, "port-forward: relaying port %ld", port);
  (void)close(sock); /* the relay is over; its outcome is already decided */
  return rc;
}
