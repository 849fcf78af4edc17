/* The CRI container log file: one record per line,
 *   <RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>\n
 * F ends a line (its newline stripped); P is a piece of a line that is longer than max_line, or
 * what is left without a newline when the stream closes. kubelet joins P records up to the next F.
 * Partial lines are buffered per stream so that a line written by several write()s in the
 * container is still one F record. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct partial {
  char *buf;
  size_t len;
};

struct log_writer {
  int fd;
  char *path;
  size_t max_line;
  struct partial part[3]; /* indexed by stream id */
  char *rec;              /* one record, written with a single write() so O_APPEND keeps it whole */
};

static int open_log(const char *path, crib_err *err) {
  /* O_NOFOLLOW: the path is under a pod directory a container may be able to write to (or that
   * kubelet rotates); following a planted symlink would let it overwrite any host file.
   * O_NONBLOCK only so that a fifo planted there cannot block the open. */
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0640);
  if (fd < 0) {
    if (errno == ELOOP) return crib_fail(err, errno, "open log file `%s` (it is a symlink)", path);
    return crib_fail(err, errno, "open log file `%s`", path);
  }
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int e = errno;
    close(fd);
    return crib_fail(err, e, "fstat log file `%s`", path);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return crib_fail(err, 0, "log file `%s` is not a regular file", path);
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  return fd;
}

struct log_writer *log_writer_open(const char *path, size_t max_line, crib_err *err) {
  int fd = open_log(path, err);
  if (fd < 0) return NULL;
  struct log_writer *lw = calloc(1, sizeof *lw);
  char *p = strdup(path);
  char *out = malloc(max_line);
  char *errb = malloc(max_line);
  char *rec = malloc(max_line + TIMESTAMP_MAX + 16);
  if (lw == NULL || p == NULL || out == NULL || errb == NULL || rec == NULL) {
    free(lw), free(p), free(out), free(errb), free(rec);
    close(fd);
    crib_fail(err, ENOMEM, "allocate log buffers of %zu bytes", max_line);
    return NULL;
  }
  lw->fd = fd;
  lw->path = p;
  lw->max_line = max_line;
  lw->part[STREAM_STDOUT].buf = out;
  lw->part[STREAM_STDERR].buf = errb;
  lw->rec = rec;
  return lw;
}

static void emit(struct log_writer *lw, int stream, char tag, const char *content, size_t len) {
  char ts[TIMESTAMP_MAX];
  format_now(ts);
  size_t n = strlen(ts);
  memcpy(lw->rec, ts, n);
  const char *name = stream == STREAM_STDERR ? " stderr " : " stdout ";
  memcpy(lw->rec + n, name, 8);
  n += 8;
  lw->rec[n++] = tag;
  lw->rec[n++] = ' ';
  memcpy(lw->rec + n, content, len);
  n += len;
  lw->rec[n++] = '\n';
  /* A failed write (disk full, fd gone) loses this record; the container must not stall on it. */
  if (lw->fd >= 0) crib_write_all(lw->fd, lw->rec, n);
}

void log_writer_write(struct log_writer *lw, int stream, const char *data, size_t len) {
  if (lw == NULL) return;
  struct partial *p = &lw->part[stream == STREAM_STDERR ? STREAM_STDERR : STREAM_STDOUT];
  while (len > 0) {
    const char *nl = memchr(data, '\n', len);
    size_t seg = nl ? (size_t)(nl - data) : len;
    const char *s = data;
    size_t rem = seg;
    while (rem > 0) {
      /* A full buffer becomes P only once more of the line arrives, so a line of exactly
       * max_line bytes is still a single F. */
      if (p->len == lw->max_line) {
        emit(lw, stream, 'P', p->buf, p->len);
        p->len = 0;
      }
      size_t take = lw->max_line - p->len;
      if (take > rem) take = rem;
      memcpy(p->buf + p->len, s, take);
      p->len += take;
      s += take;
      rem -= take;
    }
    if (nl == NULL) break;
    emit(lw, stream, 'F', p->buf, p->len);
    p->len = 0;
    data = nl + 1;
    len -= seg + 1;
  }
}

void log_writer_flush(struct log_writer *lw, int stream) {
  if (lw == NULL) return;
  struct partial *p = &lw->part[stream == STREAM_STDERR ? STREAM_STDERR : STREAM_STDOUT];
  if (p->len == 0) return;
  emit(lw, stream, 'P', p->buf, p->len);
  p->len = 0;
}

/* kubelet rotates by renaming the file and asking for a reopen: new records must go to a fresh
 * file at the same path. */
int log_writer_reopen(struct log_writer *lw, crib_err *err) {
  if (lw == NULL) return 0;
  int fd = open_log(lw->path, err);
  if (fd < 0) return -1;
  if (lw->fd >= 0) close(lw->fd);
  lw->fd = fd;
  return 0;
}
