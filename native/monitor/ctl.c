/* The control fifo: the daemon writes one command per line.
 *   resize <rows> <cols>\n   set the terminal size (TIOCSWINSZ; the container gets SIGWINCH)
 *   reopen\n                 close and reopen the log file at the same path (after rotation)
 * Unknown or malformed lines are ignored. The monitor creates the fifo (mode 0600) and holds a
 * writer open itself, so it never sees EOF between two daemon writes. A writer should open it
 * with O_WRONLY|O_NONBLOCK: ENXIO then means the monitor is gone, where a blocking open would
 * hang. Each command must be written with one write() (< PIPE_BUF bytes: atomic). */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ctl_channel {
  int rfd, wfd;
  char line[256];
  size_t len;
  bool overlong; /* discarding the rest of a too-long line */
};

struct ctl_channel *ctl_open(const char *path, crib_err *err) {
  struct stat st;
  if (lstat(path, &st) == 0) {
    if (!S_ISFIFO(st.st_mode)) {
      crib_fail(err, EEXIST, "control path `%s` exists and is not a fifo", path);
      return NULL;
    }
  } else if (mkfifo(path, 0600) < 0) {
    crib_fail(err, errno, "mkfifo control path `%s`", path);
    return NULL;
  }
  struct ctl_channel *c = calloc(1, sizeof *c);
  if (c == NULL) {
    crib_fail(err, ENOMEM, "allocate control channel");
    return NULL;
  }
  c->rfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
  if (c->rfd < 0) {
    crib_fail(err, errno, "open control fifo `%s`", path);
    free(c);
    return NULL;
  }
  c->wfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
  if (c->wfd < 0) {
    crib_fail(err, errno, "open control fifo `%s` for writing", path);
    close(c->rfd);
    free(c);
    return NULL;
  }
  return c;
}

int ctl_fd(const struct ctl_channel *c) { return c->rfd; }

static void dispatch(const char *line, ctl_resize_fn resize, ctl_reopen_fn reopen, void *ctx) {
  unsigned rows, cols;
  char extra;
  if (strcmp(line, "reopen") == 0) {
    reopen(ctx);
  } else if (sscanf(line, "resize %u %u %c", &rows, &cols, &extra) == 2 && rows <= 0xffff &&
             cols <= 0xffff) {
    resize(ctx, rows, cols);
  }
}

void ctl_handle(struct ctl_channel *c, ctl_resize_fn resize, ctl_reopen_fn reopen, void *ctx) {
  char buf[512];
  ssize_t n;
  while ((n = read(c->rfd, buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < n; i++) {
      if (buf[i] == '\n') {
        c->line[c->len] = '\0';
        if (!c->overlong) dispatch(c->line, resize, reopen, ctx);
        c->len = 0;
        c->overlong = false;
      } else if (c->len + 1 < sizeof c->line) {
        c->line[c->len++] = buf[i];
      } else {
        c->overlong = true;
      }
    }
  }
}

void ctl_close(struct ctl_channel *c, const char *path) {
  if (c == NULL) return;
  close(c->rfd);
  close(c->wfd);
  unlink(path);
  free(c);
}
