/* exec-sync mode (CRI ExecSync): run `<runtime> exec --process P --pid-file F ID` with pipes,
 * capture stdout and stderr apart, each up to max_output bytes (the rest is read and dropped, and
 * reported as truncated), kill the exec'd process tree when the timeout passes, and print
 *   {"exitCode": N, "stdout": "<base64>", "stderr": "<base64>", "timedOut": bool,
 *    "truncated": bool}
 * on stdout. Not daemonised: the caller waits for it. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

/* After the exec'd process is gone, a background child it left may hold the pipes open: stop
 * waiting for their EOF once they have been quiet this long. */
#define QUIET_AFTER_EXIT_MS 500
/* After a timeout kill, how long to wait for the runtime to notice before giving up on it. */
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

/* Read once; false at EOF. Sets *truncated when bytes beyond the cap were dropped. */
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

static void kill_exec(const char *pid_file, pid_t runtime) {
  pid_t pid;
  crib_err err;
  /* Kill the exec'd process and let the runtime reap it and exit: killing the runtime too would
   * leave the process a zombie in the container until some init reaps it (visible to `ps`).
   * The pid file is missing when the runtime has not started the process yet: killing the
   * runtime's own tree then stops it before it does. The caller's grace period kills the
   * runtime if it lingers. */
  if (read_pid_file(pid_file, &pid, &err) == 0) kill_tree(pid);
  else kill_tree(runtime);
}

/* Remove the pid file; one that is already gone (the runtime never wrote it) is fine. */
static int remove_pid_file(const char *pid_file, crib_err *err) {
  if (unlink(pid_file) < 0 && errno != ENOENT) return crib_fail(err, errno, "unlink pid file `%s`", pid_file);
  return 0;
}

/* A daemon from before --container-pid-file, still running after an upgrade installed this
 * monitor (until it is restarted), names no pid file: it goes in a private directory of its own
 * in /tmp, removed at the end, as that daemon's monitor did. */
static char legacy_dir[] = "/tmp/crib-exec-XXXXXX";
static char legacy_pid_file[sizeof legacy_dir + 16];

static void remove_legacy_dir(void) {
  crib_err err = {0};
  if (legacy_pid_file[0] != '\0' && rmdir(legacy_dir) < 0 && errno != ENOENT) {
    crib_fail(&err, errno, "rmdir `%s`", legacy_dir);
    crib_err_print(MONITOR_PROG, &err);
  }
}

static int exec_failed(crib_err *err) {
  crib_err_print(MONITOR_PROG, err);
  remove_legacy_dir();
  return 1;
}

int run_exec_sync(const struct exec_sync_opts *o) {
  crib_err err = {0};
  signal(SIGPIPE, SIG_IGN);
  /* The caller names the pid file, in the container's state dir (on the daemon's state root, a
   * tmpfs on a node): nothing of an exec is left outside the container's files, even when this
   * monitor is killed. A file already there is not this exec's: a timeout must never read it. */
  const char *pid_file = o->pid_file;
  if (pid_file == NULL) {
    if (mkdtemp(legacy_dir) == NULL) {
      crib_fail(&err, errno, "mkdtemp `%s`", legacy_dir);
      crib_err_print(MONITOR_PROG, &err);
      return 1;
    }
    snprintf(legacy_pid_file, sizeof legacy_pid_file, "%s/exec.pid", legacy_dir);
    pid_file = legacy_pid_file;
  } else if (remove_pid_file(pid_file, &err) < 0) {
    crib_err_print(MONITOR_PROG, &err);
    return 1;
  }

  int op[2], ep[2];
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0 || pipe2(op, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
    crib_fail(&err, errno, "pipe for exec output");
    return exec_failed(&err);
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, NULL);
  int sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0) {
    crib_fail(&err, errno, "signalfd");
    return exec_failed(&err);
  }

  char *argv[16];
  int a = runtime_argv(argv, o->runtime, o->runtime_root);
  argv[a++] = "exec";
  argv[a++] = "--process";
  argv[a++] = (char *)o->process;
  argv[a++] = "--pid-file";
  argv[a++] = (char *)pid_file;
  argv[a++] = (char *)o->id;
  argv[a] = NULL;
  pid_t runtime = spawn_runtime(argv, devnull, op[1], ep[1], &err);
  close(devnull);
  close(op[1]);
  close(ep[1]);
  if (runtime < 0) {
    return exec_failed(&err);
  }
  struct capture out = {.fd = op[0]}, errc = {.fd = ep[0]};
  set_nonblock(out.fd, &err);
  set_nonblock(errc.fd, &err);

  bool exited = false, timed_out = false, truncated = false;
  int status = 0;
  long long deadline = o->timeout_sec ? now_ms() + (long long)o->timeout_sec * 1000 : -1;
  long long quiet_since = -1;
  while (!exited || out.fd >= 0 || errc.fd >= 0) {
    long long now = now_ms();
    long long wake = deadline;
    if (exited) {
      long long q = quiet_since + QUIET_AFTER_EXIT_MS;
      if (wake < 0 || q < wake) wake = q;
    }
    int timeout = wake < 0 ? -1 : (int)(wake > now ? wake - now : 0);
    struct pollfd p[3] = {{.fd = sigfd, .events = POLLIN},
                          {.fd = out.fd, .events = POLLIN},
                          {.fd = errc.fd, .events = POLLIN}};
    int r = poll(p, 3, timeout);
    if (r < 0 && errno != EINTR) break;
    now = now_ms();
    if (r == 0) {
      if (exited) break; /* quiet (or out of time) after the exit: what we have is the output */
      if (timed_out) { /* the runtime outlived the grace period: stop it; report what we have */
        kill_tree(runtime);
        break;
      }
      timed_out = true;
      kill_exec(pid_file, runtime);
      deadline = now + KILL_GRACE_MS;
      continue;
    }
    if (p[0].revents) {
      struct signalfd_siginfo si;
      while (read(sigfd, &si, sizeof si) > 0) {
      }
      int st;
      pid_t w;
      while ((w = waitpid(-1, &st, WNOHANG)) > 0)
        if (w == runtime) {
          exited = true;
          status = st;
          quiet_since = now;
        }
    }
    struct capture *caps[2] = {&out, &errc};
    for (int i = 0; i < 2; i++) {
      if (!(p[i + 1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (!capture_read(caps[i], o->max_output, &truncated)) {
        close(caps[i]->fd);
        caps[i]->fd = -1;
      }
      quiet_since = now;
    }
  }
  if (!exited) {
    /* Gave up on a runtime that ignores SIGKILL of its tree (cannot happen short of D state). */
    kill(runtime, SIGKILL);
    waitpid(runtime, &status, 0);
  }
  if (remove_pid_file(pid_file, &err) < 0) crib_err_print(MONITOR_PROG, &err); /* the result stands */
  remove_legacy_dir();

  int code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
  struct json_buf b = {0};
  json_buf_printf(&b, "{\"exitCode\": %d, \"stdout\": ", code);
  json_buf_base64(&b, out.data, out.len);
  json_buf_append(&b, ", \"stderr\": ", 12);
  json_buf_base64(&b, errc.data, errc.len);
  json_buf_printf(&b, ", \"timedOut\": %s, \"truncated\": %s}\n", timed_out ? "true" : "false",
                  truncated ? "true" : "false");
  int rc = 0;
  if (b.data == NULL || crib_write_all(1, b.data, b.len) < 0) {
    crib_fail(&err, errno, "write result to stdout");
    crib_err_print(MONITOR_PROG, &err);
    rc = 1;
  }
  json_buf_free(&b);
  free(out.data);
  free(errc.data);
  return rc;
}
