/* The capture loop of an ExecSync (crib-exec-capture.h). */
#include "crib-exec-capture.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crib-io.h"
#include "crib-json-buf.h"
#include "crib-proc-tree.h"

/* After the exec'd process is gone, a background child it left may hold the pipes open: stop
 * waiting for their EOF once they have been quiet this long. */
#define QUIET_AFTER_EXIT_MS 500
/* After the timeout's kill, how long to wait for the child to go before killing its whole tree. */
#define KILL_GRACE_MS 5000

struct capture {
  int fd;
  unsigned char *data;
  size_t len, cap;
};

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read once; false at EOF or on a read error. Sets *truncated when bytes beyond the cap were
 * dropped (or could not be kept for want of memory). */
static bool capture_read(struct capture *c, size_t max, bool *truncated) {
  static char buf[32768];
  ssize_t n = read(c->fd, buf, sizeof buf);
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  if (n == 0) return false;
  size_t keep = (size_t)n;
  if (c->len + keep > max) {
    keep = max - c->len;
    *truncated = true;
  }
  if (keep > 0) {
    if (c->len + keep > c->cap) {
      size_t cap = c->cap ? c->cap : 4096;
      while (cap < c->len + keep) cap *= 2;
      if (cap > max) cap = max;
      unsigned char *d = realloc(c->data, cap);
      if (d == NULL) {
        *truncated = true;
        return true;
      }
      c->data = d;
      c->cap = cap;
    }
    memcpy(c->data + c->len, buf, keep);
    c->len += keep;
  }
  return true;
}

int crib_capture_fds_open(struct crib_capture_fds *c, crib_err *err) {
  if (pipe2(c->out, O_CLOEXEC) < 0 || pipe2(c->err, O_CLOEXEC) < 0)
    return crib_fail(err, errno, "pipe for the exec's output");
  c->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (c->devnull < 0) return crib_fail(err, errno, "open `/dev/null`");
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) return crib_fail(err, errno, "block SIGCHLD");
  c->sigchld = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (c->sigchld < 0) return crib_fail(err, errno, "signalfd");
  return 0;
}

void crib_capture_fds_close(struct crib_capture_fds *c) {
  int *fds[] = {&c->out[0], &c->out[1], &c->err[0], &c->err[1], &c->devnull, &c->sigchld};
  for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
    if (*fds[i] >= 0) close(*fds[i]);
    *fds[i] = -1;
  }
}

static void close_capture(struct capture *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
}

void crib_capture_run(const struct crib_capture_opts *o, struct crib_capture_result *r) {
  memset(r, 0, sizeof *r);
  struct capture out = {.fd = o->out_fd}, errc = {.fd = o->err_fd};
  /* A pipe left blocking only makes a read wait for data poll said was there: harmless. */
  for (int i = 0; i < 2; i++) {
    int fd = i ? errc.fd : out.fd;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  }
  bool exited = false, grace = false;
  long long deadline = o->timeout_sec ? now_ms() + (long long)o->timeout_sec * 1000 : -1;
  long long quiet_since = -1;
  while (!exited || out.fd >= 0 || errc.fd >= 0) {
    long long now = now_ms();
    /* After the exit, the deadline still holds: a background child that keeps writing must not
     * keep us here. */
    long long wake = deadline;
    if (exited) {
      long long quiet = quiet_since + QUIET_AFTER_EXIT_MS;
      if (wake < 0 || quiet < wake) wake = quiet;
    }
    int timeout = wake < 0 ? -1 : (int)(wake > now ? wake - now : 0);
    struct pollfd p[3] = {{.fd = o->sigchld_fd, .events = POLLIN},
                          {.fd = out.fd, .events = POLLIN},
                          {.fd = errc.fd, .events = POLLIN}};
    int n = poll(p, 3, timeout);
    if (n < 0 && errno != EINTR) break;
    now = now_ms();
    if (n == 0) {
      if (exited) break; /* quiet (or out of time) after the exit: what we have is the output */
      if (grace) {       /* the child outlived the grace period: stop its tree; report what we have */
        kill_tree(o->pid);
        break;
      }
      r->timed_out = grace = true;
      o->on_timeout(o->ctx);
      deadline = now + KILL_GRACE_MS;
      continue;
    }
    if (n > 0 && p[0].revents) {
      struct signalfd_siginfo si;
      while (read(o->sigchld_fd, &si, sizeof si) > 0) {
      }
      int st;
      pid_t w;
      while ((w = waitpid(-1, &st, WNOHANG)) > 0)
        if (w == o->pid) {
          exited = true;
          r->status = st;
          quiet_since = now;
        }
    }
    struct capture *caps[2] = {&out, &errc};
    for (int i = 0; n > 0 && i < 2; i++) {
      if (!(p[i + 1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (!capture_read(caps[i], o->max_output, &r->truncated)) close_capture(caps[i]);
      quiet_since = now;
    }
  }
  close_capture(&out);
  close_capture(&errc);
  if (!exited) {
    /* Gave up on a child that outlives SIGKILL of its tree (cannot happen short of D state). */
    kill(o->pid, SIGKILL);
    while (waitpid(o->pid, &r->status, 0) < 0 && errno == EINTR) {
    }
  }
  r->out = out.data;
  r->out_len = out.len;
  r->err = errc.data;
  r->err_len = errc.len;
}

int crib_capture_print(int fd, const struct crib_capture_result *r) {
  int code = WIFSIGNALED(r->status) ? 128 + WTERMSIG(r->status) : WEXITSTATUS(r->status);
  struct json_buf b = {0};
  json_buf_printf(&b, "{\"exitCode\": %d, \"stdout\": ", code);
  json_buf_base64(&b, r->out, r->out_len);
  json_buf_append(&b, ", \"stderr\": ", 12);
  json_buf_base64(&b, r->err, r->err_len);
  json_buf_printf(&b, ", \"timedOut\": %s, \"truncated\": %s}\n", r->timed_out ? "true" : "false",
                  r->truncated ? "true" : "false");
  int rc = 0;
  if (b.failed || b.data == NULL) {
    errno = ENOMEM;
    rc = -1;
  } else if (crib_write_all(fd, b.data, b.len) < 0) {
    rc = -1;
  }
  json_buf_free(&b);
  return rc;
}

void crib_capture_free(struct crib_capture_result *r) {
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
}
