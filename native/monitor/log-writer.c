/* The CRI container log file: one record per line,
 *   <RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>\n
 * F ends a line (its newline stripped); P is a piece of a line that is longer than max_line, or
 * what is left without a newline when the stream closes. kubelet joins P records up to the next F.
 * Partial lines are buffered per stream so that a line written by several write()s in the
 * container is still one F record.
 *
 * A write that fails (a full disk, a quota, an I/O error) must neither stall the container nor
 * make the monitor spin on retries: the record is dropped and counted, and for RETRY_AFTER_MS
 * nothing is tried; output arriving meanwhile is counted and dropped without being formatted.
 * The next attempt first writes a record saying how many bytes were lost and why
 *   <timestamp> stderr F crib-monitor: dropped N bytes of output: <reason>
 * and once that works, logging goes on. A record a failure cut short is cut off the file again,
 * so kubelet never reads half a record glued to the next one. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RETRY_AFTER_MS 1000

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
  /* While writes fail: bytes of output lost so far, why, and when to try again (CLOCK_MONOTONIC
   * ms; 0 while writing works). */
  unsigned long long dropped;
  int drop_errno;
  long long retry_at;
  bool torn; /* a cut-short record could not be cut off: start the next write on a new line */
  /* Per stream: the start of the current line was dropped, so its rest goes too (a line that
   * lost its beginning must not be logged as if it were whole). */
  bool skip_to_newline[3];
};

static long long now_ms(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) return 0;
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

/* Writes one whole record; on failure, removes what of it reached the file and returns -1 with
 * errno set. */
static int write_record(struct log_writer *lw, const char *buf, size_t n) {
  if (lw->torn && crib_write_all(lw->fd, "\n", 1) == 0) lw->torn = false;
  size_t done = 0;
  while (done < n) {
    ssize_t w = write(lw->fd, buf + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = w < 0 ? errno : ENOSPC;
      struct stat st;
      if (done > 0 && (fstat(lw->fd, &st) < 0 || st.st_size < (off_t)done ||
                       ftruncate(lw->fd, st.st_size - (off_t)done) < 0))
        lw->torn = true;
      errno = e;
      return -1;
    }
    done += (size_t)w;
  }
  return 0;
}

static size_t format_record(char *out, int stream, char tag, const char *content, size_t len) {
  char ts[TIMESTAMP_MAX];
  format_now(ts);
  size_t n = strlen(ts);
  memcpy(out, ts, n);
  const char *name = stream == STREAM_STDERR ? " stderr " : " stdout ";
  memcpy(out + n, name, 8);
  n += 8;
  out[n++] = tag;
  out[n++] = ' ';
  memcpy(out + n, content, len);
  n += len;
  out[n++] = '\n';
  return n;
}

static void start_dropping(struct log_writer *lw, int errnum, size_t lost) {
  lw->dropped += lost;
  lw->drop_errno = errnum;
  lw->retry_at = now_ms() + RETRY_AFTER_MS;
}

/* While dropping: whether it is time to try again, and if so whether the record about the loss
 * could be written (logging then goes on). */
static bool resume_writing(struct log_writer *lw, bool now_regardless) {
  if (lw->retry_at == 0) return true;
  if (!now_regardless && now_ms() < lw->retry_at) return false;
  char note[160];
  int k = snprintf(note, sizeof note,
                   MONITOR_PROG ": dropped %llu bytes of output: writing the log file failed: %s",
                   lw->dropped, strerror(lw->drop_errno));
  if (k < 0) k = 0;
  if ((size_t)k >= sizeof note) k = sizeof note - 1;
  char rec[sizeof note + TIMESTAMP_MAX + 16];
  size_t n = format_record(rec, STREAM_STDERR, 'F', note, (size_t)k);
  if (write_record(lw, rec, n) < 0) {
    start_dropping(lw, errno, 0);
    return false;
  }
  lw->dropped = 0;
  lw->retry_at = 0;
  return true;
}

static int stream_index(int stream) {
  return stream == STREAM_STDERR ? STREAM_STDERR : STREAM_STDOUT;
}

/* Output of `stream` lost while dropping (len may be 0). Partial lines go too, and what follows
 * a line whose beginning went is skipped up to its end: no line is logged glued together from
 * pieces on both sides of the gap. */
static void drop(struct log_writer *lw, int stream, const char *data, size_t len) {
  lw->dropped += len;
  for (int s = STREAM_STDOUT; s <= STREAM_STDERR; s++) {
    if (lw->part[s].len == 0) continue;
    lw->dropped += lw->part[s].len;
    lw->part[s].len = 0;
    lw->skip_to_newline[s] = true;
  }
  if (len > 0) lw->skip_to_newline[stream_index(stream)] = data[len - 1] != '\n';
}

static void emit(struct log_writer *lw, int stream, char tag, const char *content, size_t len) {
  size_t lost = len + (tag == 'F' ? 1 : 0); /* the newline F stands for was output too */
  if (lw->fd < 0) return;
  if (!resume_writing(lw, false)) {
    lw->dropped += lost;
    return;
  }
  size_t n = format_record(lw->rec, stream, tag, content, len);
  if (write_record(lw, lw->rec, n) < 0) start_dropping(lw, errno, lost);
}

void log_writer_write(struct log_writer *lw, int stream, const char *data, size_t len) {
  if (lw == NULL) return;
  /* Not yet time to try again: not even worth splitting into lines. */
  if (lw->retry_at != 0 && now_ms() < lw->retry_at) {
    drop(lw, stream, data, len);
    return;
  }
  int si = stream_index(stream);
  if (lw->skip_to_newline[si]) {
    const char *nl = memchr(data, '\n', len);
    size_t n = nl ? (size_t)(nl - data) + 1 : len;
    lw->dropped += n;
    lw->skip_to_newline[si] = nl == NULL;
    data += n;
    len -= n;
  }
  struct partial *p = &lw->part[si];
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
  if (lw->retry_at != 0) drop(lw, stream, data, 0);
}

void log_writer_flush(struct log_writer *lw, int stream) {
  if (lw == NULL) return;
  /* The last chance to say what was lost: the monitor exits after the final flushes. */
  if (lw->retry_at != 0 && !resume_writing(lw, true)) {
    drop(lw, stream, NULL, 0);
    return;
  }
  struct partial *p = &lw->part[stream_index(stream)];
  if (p->len == 0) return;
  emit(lw, stream, 'P', p->buf, p->len);
  p->len = 0;
}

/* kubelet rotates by renaming the file and asking for a reopen: new records must go to a fresh
 * file at the same path. */
bool log_writer_dropping(const struct log_writer *lw) { return lw != NULL && lw->retry_at != 0; }

int log_writer_reopen(struct log_writer *lw, crib_err *err) {
  if (lw == NULL) return 0;
  int fd = open_log(lw->path, err);
  if (fd < 0) return -1;
  if (lw->fd >= 0) close(lw->fd);
  lw->fd = fd;
  return 0;
}
