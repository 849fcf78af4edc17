#include "exec-fifo.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "crib-io.h"
#include "files.h"

/* After "0" only the execve itself is left, which takes well under a millisecond to a few. A
 * "0" with no EOF this long after means something else holds the fifo open (only a process
 * allowed to ptrace the parked init could have copied its fd): start then trusts the "0"
 * instead of waiting for the program to exit. */
#define EXEC_CONFIRM_MS 5000
/* One report is a single write of at most PIPE_BUF bytes (atomic); nothing more is kept. */
#define RESULT_MAX PIPE_BUF

static int fifo_path(const char *dir, const char *name, char *out, size_t n, crib_err *err) {
  if (snprintf(out, n, "%s/%s", dir, name) >= (int)n)
    return crib_fail(err, ENAMETOOLONG, "path of `%s` in `%s`", name, dir);
  return 0;
}

static int make_one(const char *dir, const char *name, int *fd, crib_err *err) {
  char path[PATH_MAX];
  if (fifo_path(dir, name, path, sizeof path, err) < 0) return -1;
  if (mkfifo(path, 0600) < 0) return crib_fail(err, errno, "mkfifo `%s`", path);
  /* O_RDWR never blocks on a fifo, and gives the init both a reader and a writer. */
  *fd = open(path, O_RDWR | O_CLOEXEC);
  if (*fd < 0) return crib_fail(err, errno, "open `%s`", path);
  return 0;
}

int crib_exec_fifos_make(const char *dir, int *go_fd, int *result_fd, crib_err *err) {
  if (make_one(dir, CRIB_EXEC_FIFO, go_fd, err) < 0) return -1;
  return make_one(dir, CRIB_EXEC_RESULT_FIFO, result_fd, err);
}

int crib_exec_result_reached(int result_fd, crib_err *err) {
  if (crib_write_all(result_fd, "0", 1) < 0) return crib_fail(err, errno, "write `%s`", CRIB_EXEC_RESULT_FIFO);
  return 0;
}

void crib_exec_result_failed(int result_fd, const crib_err *e) {
  char buf[RESULT_MAX];
  int n = snprintf(buf, sizeof buf, "E%s", e->msg);
  size_t len = n < 0 ? 1 : (size_t)n >= sizeof buf ? sizeof buf - 1 : (size_t)n;
  /* Best effort by design: the init exits next, and start reports a silent death clearly too. */
  (void)crib_write_all(result_fd, buf, len);
}

static long ms_since(const struct timespec *t0) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - t0->tv_sec) * 1000L + (now.tv_nsec - t0->tv_nsec) / 1000000L;
}

/* Append what the fifo holds now (up to RESULT_MAX - 1 bytes in all); *eof once no writer is
 * left. read() returning 0 is the one reliable sign of that (see exec-fifo.h). */
static int drain(int fd, char *buf, size_t *len, bool *eof, crib_err *err) {
  for (;;) {
    char chunk[512];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 0;
    if (n < 0) return crib_fail(err, errno, "read `%s`", CRIB_EXEC_RESULT_FIFO);
    if (n == 0) {
      *eof = true;
      return 0;
    }
    size_t take = RESULT_MAX - 1 - *len;
    if ((size_t)n < take) take = (size_t)n;
    memcpy(buf + *len, chunk, take);
    *len += take;
  }
}

/* Read the init's report until its end closes, or until it is dead (its pidfd), whichever comes
 * first; *confirmed is false when a "0" came but no EOF within EXEC_CONFIRM_MS. */
static int read_report(int fd, int pidfd, char *buf, size_t *len, bool *confirmed, crib_err *err) {
  bool eof = false;
  struct timespec first = {0};
  *confirmed = true;
  while (!eof) {
    int timeout = -1;
    if (*len > 0) {
      long left = EXEC_CONFIRM_MS - ms_since(&first);
      if (left <= 0) {
        *confirmed = false;
        return 0;
      }
      timeout = (int)left;
    }
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
    if (poll(p, 2, timeout) < 0) {
      if (errno == EINTR) continue;
      return crib_fail(err, errno, "poll `%s`", CRIB_EXEC_RESULT_FIFO);
    }
    size_t before = *len;
    if (drain(fd, buf, len, &eof, err) < 0) return -1;
    if (before == 0 && *len > 0) clock_gettime(CLOCK_MONOTONIC, &first);
    /* Dead: everything it wrote is in the fifo, and drain took it. */
    if (p[1].revents) break;
  }
  return 0;
}

/* What the report says: 0 when the program runs. */
static int judge(const crib_state *st, const char *buf, size_t len, bool confirmed, crib_err *err) {
  if (len == 1 && buf[0] == '0') {
    if (!confirmed)
      fprintf(stderr, "crib-runtime: warning: container `%s`: process %d reached its execve but the "
              "exec was not confirmed within %d ms (is something else holding `%s` open?)\n",
              st->id, (int)st->pid, EXEC_CONFIRM_MS, CRIB_EXEC_RESULT_FIFO);
    return 0;
  }
  const char *text = buf;
  size_t n = len;
  if (n > 0 && text[0] == '0') text++, n--;
  if (n > 0 && text[0] == 'E')
    return crib_fail(err, 0, "container `%s`: %.*s", st->id, (int)(n - 1), text + 1);
  if (len == 0)
    return crib_fail(err, ESRCH, "container `%s`: its process %d died before exec'ing its program, "
                     "without a report (killed?)", st->id, (int)st->pid);
  return crib_fail(err, 0, "container `%s`: unexpected report from process %d on `%s` (%zu bytes)",
                   st->id, (int)st->pid, CRIB_EXEC_RESULT_FIFO, len);
}

static int gone(const crib_state *st, crib_err *err) {
  return crib_fail(err, ESRCH, "container `%s`: its process %d is gone", st->id, (int)st->pid);
}

/* A pidfd of st's init, checked to be that process still (its pid may have been reused). */
static int open_init(const crib_state *st, crib_err *err) {
  int pidfd = (int)syscall(SYS_pidfd_open, st->pid, 0);
  if (pidfd < 0) return errno == ESRCH ? gone(st, err) : crib_fail(err, errno, "pidfd_open %d", (int)st->pid);
  unsigned long long start;
  bool zombie = false;
  if (crib_proc_start_time(st->pid, &start, &zombie) < 0 || zombie || start != st->start_time) {
    close(pidfd);
    return gone(st, err);
  }
  return pidfd;
}

/* The byte that releases the init. */
static int release(const crib_state *st, const char *go, crib_err *err) {
  /* Non-blocking: the parked init holds the fifo open for reading, so this succeeds at once;
   * ENXIO means no reader, i.e. the init is gone. */
  int fd = open(go, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return errno == ENXIO ? gone(st, err) : crib_fail(err, errno, "open `%s`", go);
  int rc = 0;
  if (crib_write_all(fd, "0", 1) < 0) rc = crib_fail(err, errno, "write `%s`", go);
  if (close(fd) < 0 && rc == 0) rc = crib_fail(err, errno, "close `%s`", go);
  /* From here on the container is running (state.h), whatever the report says. */
  if (rc == 0 && unlink(go) < 0 && errno != ENOENT) rc = crib_fail(err, errno, "unlink `%s`", go);
  return rc;
}

int crib_exec_release(const crib_state *st, crib_err *err) {
  char go[PATH_MAX], result[PATH_MAX];
  if (fifo_path(st->dir, CRIB_EXEC_FIFO, go, sizeof go, err) < 0 ||
      fifo_path(st->dir, CRIB_EXEC_RESULT_FIFO, result, sizeof result, err) < 0)
    return -1;
  /* Opened before the release, while the init holds its end: the report cannot be missed. */
  int res = open(result, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (res < 0 && errno != ENOENT) return crib_fail(err, errno, "open `%s`", result);
  if (res < 0) return release(st, go, err); /* made by an earlier crib-runtime: nothing to wait on */
  int rc = -1, pidfd = open_init(st, err);
  if (pidfd >= 0 && release(st, go, err) == 0) {
    if (unlink(result) < 0 && errno != ENOENT)
      fprintf(stderr, "crib-runtime: warning: unlink `%s`: %s\n", result, strerror(errno));
    char buf[RESULT_MAX];
    size_t len = 0;
    bool confirmed;
    if (read_report(res, pidfd, buf, &len, &confirmed, err) == 0) rc = judge(st, buf, len, confirmed, err);
  }
  if (pidfd >= 0) close(pidfd);
  close(res);
  return rc;
}
