/* Container mode: daemonise, run `<runtime> create`, report the pid on the sync fd, then pump the
 * container's output into the log file and the attach clients and serve the control socket until
 * it exits; then announce the exit on the control socket and persist it (exit file), staying as
 * long as neither the file is written nor the daemon acknowledged the exit. Everything runs in
 * one thread around one poll() loop; SIGCHLD arrives on a signalfd. */
#include "container.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OUT_CHUNK 32768
#define DRAIN_MAX (16 * 1024 * 1024)
/* While the log drops output and nobody is attached, the output pipes are read at most this
 * often: a chatty container then costs the monitor a few wakeups a second instead of one per
 * line it writes. A pipe filling up in between only slows such a container down. */
#define DROPPING_READ_INTERVAL_MS 50
/* Retrying an exit file that could not be written (a full disk): first after this, doubling. */
#define EXIT_RETRY_FIRST_MS 1000
#define EXIT_RETRY_MAX_MS 10000

static char out_buf[OUT_CHUNK];

static long long now_ms(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) return 0;
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the exit path -------------------------------------------------------------------------- */

static void cleanup_channels(struct container *c) {
  attach_close(c->attach, c->o->attach_socket);
  c->attach = NULL;
  ctl_close(c->ctl, c->o->ctl_socket);
  c->ctl = NULL;
}

/* Before the sync line was sent: tidy up, then report (so a caller that reads the failure finds
 * nothing of ours left), and exit non-zero. */
int fail_early(struct container *c, const char *message) {
  cleanup_channels(c);
  sync_report_error(c->o->sync_fd, message);
  return 1;
}

/* ---- stdin ---------------------------------------------------------------------------------- */

static void close_stdin(struct container *c) {
  if (c->stdin_fd < 0) return;
  if (c->stdin_fd == c->pty_fd) {
    /* The master is also the output: end the input with the terminal's EOF character instead. */
    write(c->pty_fd, "\x04", 1);
  } else {
    close(c->stdin_fd);
  }
  c->stdin_fd = -1;
  c->in_len = 0;
  c->stdin_close_pending = false;
}

static void flush_stdin(struct container *c) {
  while (c->in_len > 0 && c->stdin_fd >= 0) {
    ssize_t w = write(c->stdin_fd, c->in_buf, c->in_len);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) close_stdin(c); /* EPIPE: the container closed its stdin */
      return;
    }
    memmove(c->in_buf, c->in_buf + w, c->in_len - (size_t)w);
    c->in_len -= (size_t)w;
  }
  if (c->in_len == 0 && c->stdin_close_pending) close_stdin(c);
}

static void on_input(void *ctx, const char *data, size_t len) {
  struct container *c = ctx;
  if (c->stdin_fd < 0) return;
  /* Client input is read only while in_buf is empty, and one read is smaller than in_buf. */
  if (len > sizeof c->in_buf - c->in_len) len = sizeof c->in_buf - c->in_len;
  memcpy(c->in_buf + c->in_len, data, len);
  c->in_len += len;
  flush_stdin(c);
}

static void on_input_end(void *ctx) {
  struct container *c = ctx;
  if (!c->o->stdin_once || c->stdin_fd < 0) return;
  c->stdin_close_pending = true;
  flush_stdin(c);
}

/* ---- control -------------------------------------------------------------------------------- */

static void reply_status(struct container *c, struct json_buf *reply) {
  json_buf_printf(reply, "{\"ok\": true, \"running\": %s, \"pid\": %d, \"exit\": ",
                  c->exited ? "false" : "true", (int)c->pid);
  if (c->have_exit) exit_status_json(&c->exit, reply);
  else json_buf_append(reply, "null", 4);
  json_buf_printf(reply, ", \"exitFilePersisted\": %s}", c->exit_persisted ? "true" : "false");
}

static void on_command(void *ctx, const struct ctl_command *cmd, struct json_buf *reply) {
  struct container *c = ctx;
  crib_err err = {0};
  if (strcmp(cmd->name, "status") == 0) {
    reply_status(c, reply);
  } else if (strcmp(cmd->name, "resize") == 0) {
    unsigned rows, cols;
    if (!ctl_command_uint(cmd, "rows", 0xffff, &rows) ||
        !ctl_command_uint(cmd, "cols", 0xffff, &cols)) {
      ctl_reply_error(reply, "resize needs \"rows\" and \"cols\", integers 0..65535");
    } else if (c->pty_fd < 0) {
      ctl_reply_error(reply, "the process has no terminal to resize");
    } else {
      struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
      if (ioctl(c->pty_fd, TIOCSWINSZ, &ws) < 0) {
        crib_fail(&err, errno, "ioctl TIOCSWINSZ %ux%u", rows, cols);
        ctl_reply_error(reply, err.msg);
      }
    }
  } else if (strcmp(cmd->name, "reopen") == 0) {
    /* The reply goes out once the new file is open: kubelet looks for it when the call returns. */
    if (log_writer_reopen(c->log, &err) < 0) ctl_reply_error(reply, err.msg);
  } else if (strcmp(cmd->name, "ack-exit") == 0) {
    if (!c->have_exit) ctl_reply_error(reply, "the process has not exited");
    else c->exit_acked = true;
  } else {
    ctl_reply_error(reply, "unknown command");
  }
}

/* ---- output --------------------------------------------------------------------------------- */

/* Read once from a stream; false when it ended (EOF, or EIO from a pty whose slave closed). */
static bool pump(struct container *c, int fd, int stream) {
  ssize_t n = read(fd, out_buf, sizeof out_buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  if (n <= 0) return false;
  log_writer_write(c->log, stream, out_buf, (size_t)n);
  if (c->attach) attach_broadcast(c->attach, stream, out_buf, (size_t)n);
  return true;
}

static void end_stream(struct container *c, int *fd, int stream) {
  log_writer_flush(c->log, stream);
  if (*fd != c->pty_fd) close(*fd);
  *fd = -1;
}

/* After the container exited, what it wrote is in the pipe or pty buffer: read it all. The cap
 * guards against a process outside the container's pid namespace holding the pipe and writing
 * forever. */
static void drain(struct container *c, int *fd, int stream) {
  if (*fd < 0) return;
  size_t total = 0;
  while (total < DRAIN_MAX) {
    ssize_t n = read(*fd, out_buf, sizeof out_buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    log_writer_write(c->log, stream, out_buf, (size_t)n);
    if (c->attach) attach_broadcast(c->attach, stream, out_buf, (size_t)n);
    total += (size_t)n;
  }
  end_stream(c, fd, stream);
}

static void reap(struct container *c) {
  struct signalfd_siginfo si;
  while (read(c->sigfd, &si, sizeof si) > 0) {
  }
  int status;
  pid_t p;
  /* Everything reparented to us (we are a subreaper) is reaped here, not only the container. */
  while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
    if (p == c->pid && !c->exited) {
      c->exited = true;
      c->status = status;
      if (clock_gettime(CLOCK_REALTIME, &c->exited_ts) < 0) c->exited_ts = (struct timespec){0};
    }
  }
}

/* Whether to leave the output fds alone for now (see DROPPING_READ_INTERVAL_MS). */
static bool output_paused(struct container *c, long long now) {
  if (c->output_paused_until == 0) return false;
  if (now >= c->output_paused_until || !log_writer_dropping(c->log) ||
      attach_has_clients(c->attach)) {
    c->output_paused_until = 0;
    return false;
  }
  return true;
}

static void event_loop(struct container *c) {
  struct pollfd pfds[8 + ATTACH_MAX_POLL + CTL_MAX_POLL];
  while (!c->exited) {
    long long now = now_ms();
    bool paused = output_paused(c, now);
    size_t n = 0;
    pfds[n++] = (struct pollfd){.fd = c->sigfd, .events = POLLIN};
    size_t i_out = n;
    short out_events = paused ? 0 : POLLIN;
    if (c->in_len > 0 && c->stdin_fd == c->out_fd) out_events |= POLLOUT;
    /* fd -1 is skipped by poll */
    pfds[n++] = (struct pollfd){.fd = out_events ? c->out_fd : -1, .events = out_events};
    size_t i_err = n;
    pfds[n++] = (struct pollfd){.fd = paused ? -1 : c->err_fd, .events = POLLIN};
    size_t i_in = n;
    bool in_poll = c->in_len > 0 && c->stdin_fd >= 0 && c->stdin_fd != c->out_fd;
    pfds[n++] = (struct pollfd){.fd = in_poll ? c->stdin_fd : -1, .events = POLLOUT};
    size_t i_ctl = n;
    ctl_poll_fds(c->ctl, pfds, &n);
    size_t i_attach = n;
    attach_poll_fds(c->attach, pfds, &n, c->in_len == 0);

    int timeout = paused ? (int)(c->output_paused_until - now) : -1;
    if (poll(pfds, n, timeout) < 0) {
      if (errno == EINTR) continue;
      /* Cannot happen with valid fds. Stop serving, but still record the real exit status. */
      int st;
      while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR) {
      }
      c->exited = true;
      c->status = st;
      if (clock_gettime(CLOCK_REALTIME, &c->exited_ts) < 0) c->exited_ts = (struct timespec){0};
      break;
    }
    if (pfds[0].revents) reap(c);
    ctl_handle(c->ctl, pfds + i_ctl, i_attach - i_ctl, on_command, c);
    bool read_output = false;
    if (pfds[i_out].revents & (POLLIN | POLLHUP | POLLERR)) {
      read_output = true;
      if (!pump(c, c->out_fd, STREAM_STDOUT)) {
        if (c->stdin_fd == c->out_fd) c->stdin_fd = -1;
        end_stream(c, &c->out_fd, STREAM_STDOUT);
      }
    }
    if (pfds[i_err].revents & (POLLIN | POLLHUP | POLLERR)) {
      read_output = true;
      if (!pump(c, c->err_fd, STREAM_STDERR)) end_stream(c, &c->err_fd, STREAM_STDERR);
    }
    if ((pfds[i_in].revents & (POLLOUT | POLLERR | POLLHUP)) ||
        (pfds[i_out].revents & POLLOUT))
      flush_stdin(c);
    attach_handle(c->attach, pfds + i_attach, n - i_attach, on_input, on_input_end, c);
    if (read_output && log_writer_dropping(c->log) && !attach_has_clients(c->attach))
      c->output_paused_until = now_ms() + DROPPING_READ_INTERVAL_MS;
  }
}

/* ---- after the exit ------------------------------------------------------------------------- */

static void announce_exit(struct container *c) {
  struct json_buf b = {0};
  static const char head[] = "{\"event\": \"exit\", \"exit\": ";
  json_buf_append(&b, head, sizeof head - 1);
  exit_status_json(&c->exit, &b);
  json_buf_append(&b, "}\n", 2);
  if (!b.failed) ctl_broadcast(c->ctl, b.data, b.len);
  json_buf_free(&b);
}

/* Writes the exit file, retrying with backoff while the failure may heal (a full disk), and
 * serves the control socket meanwhile (status, ack-exit). Returns once the file is written, the
 * daemon acknowledged the exit, or the write cannot work (the directory is gone: nobody is left
 * to read it); the exit code says which. */
static int persist_exit(struct container *c) {
  long long backoff = EXIT_RETRY_FIRST_MS;
  long long next_try = 0;
  crib_err err = {0};
  struct pollfd pfds[1 + CTL_MAX_POLL];
  for (;;) {
    long long now = now_ms();
    if (!c->exit_persisted && !c->exit_acked && now >= next_try) {
      if (exit_status_write_file(c->o->exit_file, &c->exit, &err) == 0) {
        c->exit_persisted = true;
      } else if (!exit_status_write_may_heal(err.errnum)) {
        return 1;
      } else {
        next_try = now + backoff;
        backoff = backoff * 2 > EXIT_RETRY_MAX_MS ? EXIT_RETRY_MAX_MS : backoff * 2;
      }
    }
    if (c->exit_persisted || c->exit_acked) return 0;
    size_t n = 0;
    pfds[n++] = (struct pollfd){.fd = c->sigfd, .events = POLLIN};
    ctl_poll_fds(c->ctl, pfds, &n);
    long long wait = next_try - now_ms();
    int r = poll(pfds, n, wait < 0 ? 0 : (int)wait);
    if (r < 0 && errno != EINTR) return 1;
    if (r <= 0) continue;
    if (pfds[0].revents) reap(c);
    ctl_handle(c->ctl, pfds + 1, n - 1, on_command, c);
  }
}

/* ---- the mode ------------------------------------------------------------------------------- */

/* The monitor proper, in the grandchild. */
static int monitor_main(struct container *c) {
  crib_err err = {0};
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
    crib_fail(&err, errno, "prctl PR_SET_CHILD_SUBREAPER");
    return fail_early(c, err.msg);
  }
  if (devnull_stdio(&err) < 0) return fail_early(c, err.msg);
  /* The monitor must not pin whatever directory (or mount) the caller ran in. */
  if (chdir("/") < 0) {
    crib_fail(&err, errno, "chdir `/`");
    return fail_early(c, err.msg);
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, NULL);
  c->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (c->sigfd < 0) {
    crib_fail(&err, errno, "signalfd");
    return fail_early(c, err.msg);
  }
  if (c->o->wait_attach) attach_wait_client(c->attach);
  if (create_container(c) != 0) return 1;

  struct oom_probe oom;
  oom_probe_init(&oom, c->pid);
  if (sync_report_pid(c->o->sync_fd, c->pid, getpid()) < 0) {
    /* The caller is gone before it learnt the pid (the daemon was killed while this monitor was
     * starting, or gave up waiting): nobody will ever start, stop or delete this container, and
     * a daemon restarted meanwhile may have looked for the runtime's state before it existed
     * and found none. So undo it here rather than leave a parked process behind. */
    crib_fail(&err, errno, "the sync line could not be written; undoing the %s",
              c->o->exec_process ? "exec" : "create");
    crib_err_print(MONITOR_PROG, &err);
    abandon_container(c);
    cleanup_channels(c);
    return 1;
  }

  event_loop(c);

  /* The output first, so that a daemon told of the exit finds the whole log. */
  drain(c, &c->out_fd, STREAM_STDOUT);
  drain(c, &c->err_fd, STREAM_STDERR);
  log_writer_flush(c->log, STREAM_STDOUT);
  log_writer_flush(c->log, STREAM_STDERR);
  exit_status_from_wait(&c->exit, c->status, &c->exited_ts, oom_probe_killed(&oom));
  c->have_exit = true;
  announce_exit(c);
  attach_close(c->attach, c->o->attach_socket);
  c->attach = NULL;
  int rc = persist_exit(c);
  ctl_close(c->ctl, c->o->ctl_socket);
  c->ctl = NULL;
  return rc;
}

int run_container(const struct monitor_opts *o) {
  crib_err err = {0};
  /* Fds the caller leaked to us must not reach the container through the runtime. */
  close_fds_from(3, o->sync_fd);
  if (o->sync_fd >= 0 && set_cloexec(o->sync_fd, &err) < 0) {
    crib_err_print(MONITOR_PROG, &err);
    return 1;
  }
  /* A writer to a gone attach client or container stdin gets EPIPE, not death; a closing
   * session of the caller must not take the monitor with it. */
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);

  /* Modes of the log file (0640), sockets and exit file must not depend on the caller's umask. */
  umask(022);
  struct container c = {.o = o, .sigfd = -1, .out_fd = -1, .err_fd = -1, .stdin_fd = -1,
                        .pty_fd = -1, .pid = -1};
  /* Found out now rather than when the container exits and its status would be lost. */
  char exit_dir[PATH_MAX];
  snprintf(exit_dir, sizeof exit_dir, "%s", o->exit_file);
  char *slash = strrchr(exit_dir, '/');
  if (slash != NULL) *slash = '\0';
  if (access(exit_dir[0] ? exit_dir : "/", W_OK) < 0) {
    crib_fail(&err, errno, "exit file directory `%s`", exit_dir);
    crib_err_print(MONITOR_PROG, &err);
    sync_report_error(o->sync_fd, err.msg);
    return 1;
  }
  /* The channels are set up before daemonising, so their errors reach the caller's stderr too. */
  if (o->log_path != NULL) c.log = log_writer_open(o->log_path, o->log_max_line, &err);
  if (c.log != NULL || o->log_path == NULL) c.ctl = ctl_open(o->ctl_socket, &err);
  if (c.ctl != NULL) c.attach = attach_server_open(o->attach_socket, &err);
  if (c.attach == NULL) {
    crib_err_print(MONITOR_PROG, &err);
    fail_early(&c, err.msg);
    return 1;
  }

  /* Double fork: the caller waits only for its direct child, which exits at once; the grandchild
   * is reparented away from the caller and, after setsid, has no controlling terminal to lose. */
  pid_t child = fork();
  if (child < 0) {
    crib_fail(&err, errno, "fork");
    crib_err_print(MONITOR_PROG, &err);
    fail_early(&c, err.msg);
    return 1;
  }
  if (child > 0) {
    int st;
    while (waitpid(child, &st, 0) < 0 && errno == EINTR) {
    }
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
  }
  if (setsid() < 0) _exit(1);
  pid_t grandchild = fork();
  if (grandchild < 0) {
    crib_fail(&err, errno, "fork");
    _exit(fail_early(&c, err.msg));
  }
  if (grandchild > 0) _exit(0);
  _exit(monitor_main(&c));
}
