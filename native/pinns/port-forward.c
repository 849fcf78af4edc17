/* crib-pinns port-forward FILE PORT: opens one forwarded connection of a CRI PortForward and
 * hands it to the daemon. Joins the pod's pinned network namespace, connects to 127.0.0.1:PORT
 * (then [::1]:PORT, as kubelet's forwarders do), sends the connected socket over fd 3 (a unix
 * socket from the daemon) with SCM_RIGHTS, and exits.
 *
 * Why a handoff and not a relay: a socket keeps the network namespace it was created in, so once
 * connected it works from the daemon's namespace too. The daemon then moves the bytes itself,
 * like containerd does, instead of every byte crossing this process through two more pipes (that
 * hop cost half of port-forward's throughput on a busy 2-core node). Entering the namespace still
 * happens here, never in the multithreaded daemon.
 *
 * Errors go to stderr as "crib-pinns: port-forward: ..." with exit status 1; the daemon copies
 * them to the client's error stream. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crib-fd-passing.h"
#include "pinns.h"

/* The daemon's end of the handoff channel, set up by its spawn. */
#define HANDOFF_FD 3

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

/* Sends `fd` over `channel` as SCM_RIGHTS with a one-byte payload (a stream socket carries no
 * ancillary data without at least one byte). */
static int send_fd(int channel, int fd, crib_err *err) {
  const char byte = 'c';
  ssize_t n = crib_send_with_fd(channel, &byte, 1, fd);
  if (n < 0) return crib_fail(err, errno, "sendmsg on fd %d (the daemon's handoff socket)", channel);
  if (n != 1) return crib_fail(err, 0, "sendmsg on fd %d sent %zd bytes, expected 1", channel, n);
  return 0;
}

int pinns_port_forward(const char *file, const char *port_text, crib_err *err) {
  char *end = NULL;
  errno = 0;
  long port = strtol(port_text, &end, 10);
  if (errno != 0 || end == port_text || *end != '\0' || port < 1 || port > 65535)
    return crib_fail(err, 0, "port-forward: port `%s` is not in 1..65535", port_text);
  /* Check the channel first: without it a connection would be opened only to be dropped. */
  int type = 0;
  socklen_t len = sizeof type;
  if (getsockopt(HANDOFF_FD, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
    return crib_fail(err, errno, "port-forward: fd %d must be the daemon's unix socket", HANDOFF_FD);
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
  int rc = send_fd(HANDOFF_FD, sock, err);
  if (rc < 0) crib_err_wrap(err, "port-forward: handing the connection to port %ld to the daemon", port);
  /* The daemon holds its own reference now (or the handoff failed and the connection is moot). */
  if (close(sock) < 0 && rc == 0) return crib_fail(err, errno, "port-forward: close the connection's fd");
  return rc;
}
