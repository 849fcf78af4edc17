/* The control socket: a unix SOCK_STREAM socket (mode 0600) that up to CTL_MAX_CLIENTS clients
 * may hold open at once, speaking the line protocol described at the top of main.c: one JSON
 * command per line in, one JSON reply line per command out, in order, and event lines pushed to
 * every client. Every line is queued whole, so replies and events never interleave mid-line.
 * A line longer than CTL_LINE_MAX closes its client, as does a client that lets more than
 * CTL_OUT_MAX bytes of replies and events pile up unread; the container never waits on a client. */
#include "monitor.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CTL_LINE_MAX 4096
#define CTL_OUT_MAX 65536
#define CTL_LINGER_MS 1000

struct ctl_client {
  int fd;   /* -1: free slot */
  char *in; /* CTL_LINE_MAX bytes, allocated while connected */
  size_t in_len;
  struct send_queue out; /* whole lines the socket could not take yet */
};

struct ctl_server {
  int listen_fd;
  struct ctl_client clients[CTL_MAX_CLIENTS];
};

struct ctl_server *ctl_open(const char *path, crib_err *err) {
  struct ctl_server *cs = calloc(1, sizeof *cs);
  if (cs == NULL) {
    crib_fail(err, ENOMEM, "allocate control socket");
    return NULL;
  }
  cs->listen_fd = unix_listen(path, SOCK_STREAM, 0600, err);
  if (cs->listen_fd < 0) {
    free(cs);
    crib_err_wrap(err, "control socket");
    return NULL;
  }
  for (int i = 0; i < CTL_MAX_CLIENTS; i++) cs->clients[i].fd = -1;
  return cs;
}

static void drop_client(struct ctl_client *c) {
  /* Unread input makes the close reset the connection, which can cost the client the replies
   * it has not read yet: read it away first. */
  char buf[512];
  while (recv(c->fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
  close(c->fd);
  free(c->in);
  send_queue_free(&c->out);
  *c = (struct ctl_client){.fd = -1};
}

static void accept_clients(struct ctl_server *cs) {
  for (;;) {
    int fd = accept4(cs->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return; /* EAGAIN, or a client that gave up already */
    struct ctl_client *slot = NULL;
    for (int i = 0; i < CTL_MAX_CLIENTS && slot == NULL; i++)
      if (cs->clients[i].fd < 0) slot = &cs->clients[i];
    char *in = slot ? malloc(CTL_LINE_MAX) : NULL;
    if (in == NULL) {
      close(fd); /* full (or no memory): the client sees EOF at once instead of hanging */
      continue;
    }
    *slot = (struct ctl_client){.fd = fd, .in = in};
  }
}

void ctl_poll_fds(const struct ctl_server *cs, struct pollfd *pfds, size_t *n) {
  pfds[(*n)++] = (struct pollfd){.fd = cs->listen_fd, .events = POLLIN};
  for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
    const struct ctl_client *c = &cs->clients[i];
    if (c->fd < 0) continue;
    pfds[(*n)++] = (struct pollfd){.fd = c->fd, .events = POLLIN | (c->out.len ? POLLOUT : 0)};
  }
}

/* Queue one whole line (with its newline) and send what can be sent; false when the client must
 * be dropped (gone, or too far behind). */
static bool queue_line(struct ctl_client *c, const char *line, size_t len) {
  return send_queue_push(&c->out, line, len, CTL_OUT_MAX) && send_queue_flush(&c->out, c->fd);
}

void ctl_reply_error(struct json_buf *reply, const char *message) {
  static const char head[] = "{\"ok\": false, \"error\": ";
  json_buf_append(reply, head, sizeof head - 1);
  json_buf_string(reply, message, strlen(message));
  json_buf_append(reply, "}", 1);
}

/* One complete line from a client: parse, let the caller act and answer, queue the answer. */
static bool dispatch(struct ctl_client *c, const char *line, size_t len, ctl_command_fn fn,
                     void *ctx) {
  struct ctl_command cmd;
  struct json_buf reply = {0};
  char why[160];
  if (ctl_parse_command(line, len, &cmd, why, sizeof why) < 0) {
    char msg[200];
    snprintf(msg, sizeof msg, "malformed command: %s", why);
    ctl_reply_error(&reply, msg);
  } else {
    fn(ctx, &cmd, &reply);
  }
  static const char ok_reply[] = "{\"ok\": true}";
  if (reply.len == 0 && !reply.failed) json_buf_append(&reply, ok_reply, sizeof ok_reply - 1);
  json_buf_append(&reply, "\n", 1);
  bool ok = !reply.failed && queue_line(c, reply.data, reply.len);
  json_buf_free(&reply);
  return ok;
}

/* Read once from a client and handle every complete line; false when it must be dropped. */
static bool read_client(struct ctl_client *c, ctl_command_fn fn, void *ctx) {
  ssize_t r = recv(c->fd, c->in + c->in_len, CTL_LINE_MAX - c->in_len, 0);
  if (r < 0) return errno == EAGAIN || errno == EINTR;
  if (r == 0) return false;
  c->in_len += (size_t)r;
  size_t start = 0;
  for (size_t i = 0; i < c->in_len; i++) {
    if (c->in[i] != '\n') continue;
    if (!dispatch(c, c->in + start, i - start, fn, ctx)) return false;
    start = i + 1;
  }
  memmove(c->in, c->in + start, c->in_len - start);
  c->in_len -= start;
  /* A full buffer without a newline: a line longer than the protocol allows. */
  return c->in_len < CTL_LINE_MAX;
}

static struct ctl_client *find(struct ctl_server *cs, int fd) {
  for (int i = 0; i < CTL_MAX_CLIENTS; i++)
    if (cs->clients[i].fd == fd) return &cs->clients[i];
  return NULL;
}

void ctl_handle(struct ctl_server *cs, const struct pollfd *pfds, size_t count, ctl_command_fn fn,
                void *ctx) {
  bool accept_ready = false;
  for (size_t i = 0; i < count; i++) {
    if (pfds[i].revents == 0) continue;
    if (pfds[i].fd == cs->listen_fd) {
      accept_ready = true;
      continue;
    }
    struct ctl_client *c = find(cs, pfds[i].fd);
    if (c == NULL) continue;
    bool keep = true;
    if (pfds[i].revents & POLLOUT) keep = send_queue_flush(&c->out, c->fd);
    if (keep && (pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) keep = read_client(c, fn, ctx);
    if (!keep) drop_client(c);
  }
  if (accept_ready) accept_clients(cs);
}

void ctl_broadcast(struct ctl_server *cs, const char *line, size_t len) {
  for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
    struct ctl_client *c = &cs->clients[i];
    if (c->fd >= 0 && !queue_line(c, line, len)) drop_client(c);
  }
}

static long ms_until(const struct timespec *deadline) {
  struct timespec now;
  if (clock_gettime(CLOCK_MONOTONIC, &now) < 0) return 0;
  return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Sends what is still queued (an exit event, a last reply) for at most CTL_LINGER_MS, then closes
 * every client and removes the socket. */
void ctl_close(struct ctl_server *cs, const char *path) {
  if (cs == NULL) return;
  struct timespec deadline;
  if (clock_gettime(CLOCK_MONOTONIC, &deadline) < 0) deadline = (struct timespec){0};
  deadline.tv_sec += CTL_LINGER_MS / 1000;
  for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
    struct ctl_client *c = &cs->clients[i];
    if (c->fd < 0) continue;
    while (c->out.len > 0) {
      struct pollfd p = {.fd = c->fd, .events = POLLOUT};
      long left = ms_until(&deadline);
      if (left <= 0 || poll(&p, 1, (int)left) <= 0 || !send_queue_flush(&c->out, c->fd)) break;
    }
    drop_client(c);
  }
  close(cs->listen_fd);
  unlink(path);
  free(cs);
}
