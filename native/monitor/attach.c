/* The attach socket: a unix SOCK_STREAM socket (mode 0700: root only) that several clients may
 * connect to at once.
 *   monitor -> client: frames of  [stream id (1 stdout, 2 stderr)] [0 0 0] [length, u32 BE] data
 *                      (docker's stdcopy framing; a terminal's output is all stream 1). After
 *                      the container exited and its output was drained, the monitor ends its
 *                      output (EOF) and closes once the client closed its side too (a second
 *                      at most).
 *   client -> monitor: raw bytes, forwarded to the container's stdin (dropped without --stdin).
 *                      A client shutting down its write side (or closing) ends its input; with
 *                      --stdin-once that closes the container's stdin.
 * A client that does not read fast enough is disconnected once ATTACH_CLIENT_BUF bytes are queued
 * for it: the container and the other clients never wait for it. The queue is allocated on the
 * first backlog and freed once drained (an mmap-sized block: its pages go back to the kernel), so
 * an idle monitor stays small. */
#include "monitor.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define ATTACH_MAX_CLIENTS (ATTACH_MAX_POLL - 1)
#define ATTACH_CLIENT_BUF (1024 * 1024)

struct client {
  int fd; /* -1: free slot */
  bool input_done;
  struct send_queue out; /* frame bytes the socket could not take yet */
};

struct attach_server {
  int listen_fd;
  struct client clients[ATTACH_MAX_CLIENTS];
};

struct attach_server *attach_server_open(const char *path, crib_err *err) {
  struct attach_server *as = calloc(1, sizeof *as);
  if (as == NULL) {
    crib_fail(err, ENOMEM, "allocate attach server");
    return NULL;
  }
  as->listen_fd = unix_listen(path, SOCK_STREAM, 0700, err);
  if (as->listen_fd < 0) {
    free(as);
    crib_err_wrap(err, "attach socket");
    return NULL;
  }
  for (int i = 0; i < ATTACH_MAX_CLIENTS; i++) as->clients[i].fd = -1;
  return as;
}

static void drop_client(struct client *c) {
  close(c->fd);
  send_queue_free(&c->out);
  c->fd = -1;
  c->input_done = true;
}

static void accept_clients(struct attach_server *as) {
  for (;;) {
    int fd = accept4(as->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return; /* EAGAIN, or a client that gave up already */
    struct client *slot = NULL;
    for (int i = 0; i < ATTACH_MAX_CLIENTS && slot == NULL; i++)
      if (as->clients[i].fd < 0) slot = &as->clients[i];
    if (slot == NULL) {
      close(fd); /* full: the client sees EOF at once instead of hanging */
      continue;
    }
    slot->fd = fd;
    slot->input_done = false;
    slot->out = (struct send_queue){0};
  }
}

void attach_poll_fds(struct attach_server *as, struct pollfd *pfds, size_t *n, bool want_input) {
  pfds[*n] = (struct pollfd){.fd = as->listen_fd, .events = POLLIN};
  (*n)++;
  for (int i = 0; i < ATTACH_MAX_CLIENTS; i++) {
    struct client *c = &as->clients[i];
    if (c->fd < 0) continue;
    short ev = 0;
    if (want_input && !c->input_done) ev |= POLLIN;
    if (c->out.len > 0) ev |= POLLOUT;
    pfds[*n] = (struct pollfd){.fd = c->fd, .events = ev};
    (*n)++;
  }
}

static struct client *find(struct attach_server *as, int fd) {
  for (int i = 0; i < ATTACH_MAX_CLIENTS; i++)
    if (as->clients[i].fd == fd) return &as->clients[i];
  return NULL;
}

static void end_input(struct client *c, attach_input_end_fn in_end, void *ctx) {
  if (c->input_done) return;
  c->input_done = true;
  in_end(ctx);
}

void attach_handle(struct attach_server *as, struct pollfd *pfds, size_t count, attach_input_fn in,
                   attach_input_end_fn in_end, void *ctx) {
  bool accept_ready = false;
  for (size_t i = 0; i < count; i++) {
    if (pfds[i].revents == 0) continue;
    if (pfds[i].fd == as->listen_fd) {
      accept_ready = true;
      continue;
    }
    struct client *c = find(as, pfds[i].fd);
    if (c == NULL) continue;
    if (pfds[i].revents & POLLIN) {
      char buf[8192];
      ssize_t r = recv(c->fd, buf, sizeof buf, 0);
      if (r > 0) {
        in(ctx, buf, (size_t)r);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        end_input(c, in_end, ctx);
      }
    }
    if ((pfds[i].revents & POLLOUT) && !send_queue_flush(&c->out, c->fd)) {
      end_input(c, in_end, ctx);
      drop_client(c);
      continue;
    }
    /* POLLHUP: the peer closed both directions; nothing more can be sent to it. */
    if (pfds[i].revents & (POLLHUP | POLLERR | POLLNVAL)) {
      end_input(c, in_end, ctx);
      drop_client(c);
    }
  }
  if (accept_ready) accept_clients(as);
}

static bool queue(struct client *c, const char *data, size_t len) {
  return send_queue_push(&c->out, data, len, ATTACH_CLIENT_BUF);
}

void attach_broadcast(struct attach_server *as, int stream, const char *data, size_t len) {
  unsigned char hdr[8] = {(unsigned char)stream, 0, 0, 0, (unsigned char)(len >> 24),
                          (unsigned char)(len >> 16), (unsigned char)(len >> 8),
                          (unsigned char)len};
  for (int i = 0; i < ATTACH_MAX_CLIENTS; i++) {
    struct client *c = &as->clients[i];
    if (c->fd < 0) continue;
    size_t done = 0;
    if (c->out.len == 0) {
      struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)data, len}};
      struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
      ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN && errno != EINTR) {
        c->input_done = true; /* its input ends with it; stdin-once was handled on EOF */
        drop_client(c);
        continue;
      }
      done = w > 0 ? (size_t)w : 0;
    }
    if (done == sizeof hdr + len) continue;
    bool ok = true;
    if (done < sizeof hdr) {
      ok = queue(c, (const char *)hdr + done, sizeof hdr - done) && queue(c, data, len);
    } else {
      ok = queue(c, data + (done - sizeof hdr), len - (done - sizeof hdr));
    }
    if (!ok) drop_client(c); /* too slow: disconnect rather than stall the container */
  }
}

void attach_wait_client(struct attach_server *as) {
  for (;;) {
    for (int i = 0; i < ATTACH_MAX_CLIENTS; i++)
      if (as->clients[i].fd >= 0) return;
    struct pollfd p = {.fd = as->listen_fd, .events = POLLIN};
    if (poll(&p, 1, -1) < 0 && errno != EINTR) return;
    accept_clients(as);
  }
}

/* Reads and discards a client's input; false once the client closed its side (or is gone). */
static bool discard_input(struct client *c) {
  char buf[4096];
  for (;;) {
    ssize_t r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r > 0) continue;
    if (r < 0 && errno == EINTR) continue;
    return r < 0 && errno == EAGAIN;
  }
}

static long ms_until(const struct timespec *deadline) {
  struct timespec now;
  if (clock_gettime(CLOCK_MONOTONIC, &now) < 0) return 0;
  return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Ends every client once the output is over. Closing a unix socket whose peer may still write
 * to it is a trap for the peer: a write after our close fails (EPIPE), and a client that tears
 * its socket down on that error (Node does) throws away the output it had not read yet, so a
 * short `exec -it` whose client sent a byte at the wrong moment printed nothing. Hence: first
 * send what is queued, then end our output (the client reads all of it, then EOF), then wait
 * for the client to close its side, discarding its input, before closing ours. The whole
 * goodbye costs a stuck client at most ATTACH_LINGER_MS. */
#define ATTACH_LINGER_MS 1000
void attach_close(struct attach_server *as, const char *path) {
  if (as == NULL) return;
  struct timespec deadline;
  if (clock_gettime(CLOCK_MONOTONIC, &deadline) < 0) deadline = (struct timespec){0};
  deadline.tv_sec += ATTACH_LINGER_MS / 1000;
  for (int i = 0; i < ATTACH_MAX_CLIENTS; i++) {
    struct client *c = &as->clients[i];
    if (c->fd < 0) continue;
    while (c->out.len > 0) {
      struct pollfd p = {.fd = c->fd, .events = POLLOUT};
      long left = ms_until(&deadline);
      if (left <= 0 || poll(&p, 1, (int)left) <= 0 || !send_queue_flush(&c->out, c->fd)) break;
    }
    /* Fails only for a client that is gone: nothing to wait for. */
    if (c->out.len > 0 || shutdown(c->fd, SHUT_WR) < 0) drop_client(c);
  }
  for (;;) {
    struct pollfd p[ATTACH_MAX_CLIENTS];
    struct client *owner[ATTACH_MAX_CLIENTS];
    nfds_t n = 0;
    for (int i = 0; i < ATTACH_MAX_CLIENTS; i++) {
      struct client *c = &as->clients[i];
      if (c->fd < 0) continue;
      owner[n] = c;
      p[n++] = (struct pollfd){.fd = c->fd, .events = POLLIN};
    }
    long left = ms_until(&deadline);
    if (n == 0 || left <= 0) break;
    int ready = poll(p, n, (int)left);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    for (nfds_t k = 0; k < n; k++)
      if (p[k].revents != 0 && !discard_input(owner[k])) drop_client(owner[k]);
  }
  for (int i = 0; i < ATTACH_MAX_CLIENTS; i++) {
    struct client *c = &as->clients[i];
    if (c->fd < 0) continue;
    (void)discard_input(c); /* a close with unread input would reset the client */
    drop_client(c);
  }
  close(as->listen_fd);
  unlink(path);
  free(as);
}

bool attach_has_clients(const struct attach_server *as) {
  if (as == NULL) return false;
  for (int i = 0; i < ATTACH_MAX_CLIENTS; i++)
    if (as->clients[i].fd >= 0) return true;
  return false;
}
