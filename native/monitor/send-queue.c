/* What a non-blocking client socket could not take at once (attach frames, control replies and
 * events), kept in order and sent when the socket is writable again. The buffer exists only while
 * there is a backlog, and never grows past the caller's bound: a client that falls that far
 * behind is dropped by the caller rather than stall the container. */
#include "monitor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SEND_QUEUE_FIRST_CAP 1024

bool send_queue_push(struct send_queue *q, const void *data, size_t len, size_t max) {
  if (q->len + len > max) return false;
  if (q->len + len > q->cap) {
    size_t cap = q->cap ? q->cap : SEND_QUEUE_FIRST_CAP;
    while (cap < q->len + len) cap *= 2;
    if (cap > max) cap = max;
    char *grown = realloc(q->buf, cap);
    if (grown == NULL) return false;
    q->buf = grown;
    q->cap = cap;
  }
  memcpy(q->buf + q->len, data, len);
  q->len += len;
  return true;
}

bool send_queue_flush(struct send_queue *q, int fd) {
  while (q->len > 0) {
    ssize_t w = send(fd, q->buf, q->len, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN;
    }
    memmove(q->buf, q->buf + w, q->len - (size_t)w);
    q->len -= (size_t)w;
  }
  send_queue_free(q);
  return true;
}

void send_queue_free(struct send_queue *q) {
  free(q->buf);
  *q = (struct send_queue){0};
}
