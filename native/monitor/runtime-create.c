/* Running `<runtime> [--root R] create --bundle B --pid-file P [--console-socket S] ID` for the
 * container mode: its stdio are the pipes the monitor keeps (or, with --terminal, a console
 * socket on which the runtime sends the pty master), and its failure message is read back from
 * the stderr it wrote. */
#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct create_io {
  int child_in, child_out, child_err; /* the runtime's stdio */
  int err_read;                       /* where its error message can be read */
  int console_listen;                 /* terminal mode: console socket */
  char console_dir[64];
  char console_path[96];
  /* Other children reaped while waiting for the runtime. An exec'd process that exits before
   * `<runtime> exec --detach` does is reparented to us and reaped here, before its pid is known;
   * its status is kept so it is not lost (the monitor would otherwise wait for it forever). */
  pid_t reaped_pid[32];
  int reaped_status[32];
  size_t nreaped;
};

static int make_pipe(int p[2], crib_err *err) {
  if (pipe2(p, O_CLOEXEC) < 0) return crib_fail(err, errno, "pipe");
  return 0;
}

static int setup_io(struct container *c, struct create_io *io, crib_err *err) {
  io->console_listen = -1;
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) return crib_fail(err, errno, "open `/dev/null`");
  if (c->o->terminal) {
    int ep[2];
    if (make_pipe(ep, err) < 0) return -1;
    io->child_in = devnull;
    io->child_out = devnull;
    io->child_err = ep[1];
    io->err_read = ep[0];
    strcpy(io->console_dir, "/tmp/crib-console-XXXXXX");
    if (mkdtemp(io->console_dir) == NULL)
      return crib_fail(err, errno, "mkdtemp `%s`", io->console_dir);
    snprintf(io->console_path, sizeof io->console_path, "%s/console.sock", io->console_dir);
    io->console_listen = unix_listen(io->console_path, SOCK_STREAM, 0700, err);
    if (io->console_listen < 0) return crib_err_wrap(err, "console socket");
    return 0;
  }
  int op[2], ep[2];
  if (make_pipe(op, err) < 0 || make_pipe(ep, err) < 0) return -1;
  io->child_out = op[1];
  io->child_err = ep[1];
  c->out_fd = op[0];
  c->err_fd = ep[0];
  /* The runtime's own errors land on the container's stderr pipe, as with conmon. */
  io->err_read = ep[0];
  if (c->o->stdin_open) {
    int ip[2];
    if (make_pipe(ip, err) < 0) return -1;
    io->child_in = ip[0];
    c->stdin_fd = ip[1];
  } else {
    io->child_in = devnull;
  }
  return 0;
}

static void close_child_ends(struct create_io *io) {
  int fds[3] = {io->child_in, io->child_out, io->child_err};
  for (int i = 0; i < 3; i++) {
    bool dup = false;
    for (int j = 0; j < i; j++) dup |= fds[j] == fds[i];
    if (!dup && fds[i] >= 0) close(fds[i]);
  }
}

static void remove_console(struct create_io *io) {
  if (io->console_listen >= 0) close(io->console_listen);
  io->console_listen = -1;
  if (io->console_dir[0]) {
    unlink(io->console_path);
    rmdir(io->console_dir);
    io->console_dir[0] = '\0';
  }
}

/* Waits for `<runtime> create` to exit, taking the pty master from the console socket meanwhile
 * (the runtime sends it before it exits). Returns the runtime's wait status. */
static int wait_create(struct container *c, struct create_io *io, pid_t runtime) {
  int conn = -1, status = 0;
  bool done = false;
  while (!done) {
    struct pollfd p[3] = {{.fd = c->sigfd, .events = POLLIN},
                          {.fd = io->console_listen, .events = POLLIN},
                          {.fd = conn, .events = POLLIN}};
    if (poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[1].revents & POLLIN) {
      int fd = accept4(io->console_listen, NULL, NULL, SOCK_CLOEXEC);
      if (fd >= 0) {
        if (conn >= 0) close(conn);
        conn = fd;
      }
    }
    if (p[2].revents) {
      crib_err err;
      int master = recv_fd(conn, &err);
      if (master >= 0) {
        if (c->pty_fd >= 0) close(c->pty_fd);
        c->pty_fd = master;
      }
      close(conn);
      conn = -1;
    }
    if (p[0].revents) {
      struct signalfd_siginfo si;
      while (read(c->sigfd, &si, sizeof si) > 0) {
      }
      int st;
      pid_t r;
      while ((r = waitpid(-1, &st, WNOHANG)) > 0) {
        if (r == runtime) {
          status = st;
          done = true;
        } else if (io->nreaped < sizeof io->reaped_pid / sizeof io->reaped_pid[0]) {
          io->reaped_pid[io->nreaped] = r;
          io->reaped_status[io->nreaped++] = st;
        }
      }
    }
  }
  /* The runtime may have connected, sent the master and exited between two polls: whatever it
   * sent is still queued on the socket. */
  if (done && io->console_listen >= 0 && c->pty_fd < 0) {
    if (conn < 0) conn = accept4(io->console_listen, NULL, NULL, SOCK_CLOEXEC);
    crib_err err;
    if (conn >= 0) c->pty_fd = recv_fd(conn, &err);
  }
  if (conn >= 0) close(conn);
  return status;
}

static void runtime_error(int fd, int status, const char *verb, char *msg, size_t len) {
  set_nonblock(fd, &(crib_err){0});
  ssize_t n = read(fd, msg, len - 1);
  msg[n > 0 ? n : 0] = '\0';
  /* Trim trailing newlines: the message is shown as it is to the node operator. */
  for (ssize_t i = (n > 0 ? n : 0) - 1; i >= 0 && (msg[i] == '\n' || msg[i] == '\r'); i--)
    msg[i] = '\0';
  if (msg[0] == '\0') {
    if (WIFSIGNALED(status))
      snprintf(msg, len, "runtime %s was killed by signal %d", verb, WTERMSIG(status));
    else
      snprintf(msg, len, "runtime %s exited with status %d", verb, WEXITSTATUS(status));
  }
}

int create_container(struct container *c) {
  const struct monitor_opts *o = c->o;
  crib_err err = {0};
  struct create_io io = {0};
  if (setup_io(c, &io, &err) < 0) {
    remove_console(&io);
    return fail_early(c, err.msg);
  }
  char *argv[20];
  int a = runtime_argv(argv, o->runtime, o->runtime_root);
  if (o->exec_process) {
    /* --detach: the runtime starts the process and exits; the process, reparented to us (the
     * subreaper), is then monitored exactly like a container's init. */
    argv[a++] = "exec";
    argv[a++] = "--detach";
    argv[a++] = "--process";
    argv[a++] = (char *)o->exec_process;
  } else if (o->restore_image) {
    /* The restored init is criu's child until criu exits, then ours (we are the subreaper). */
    argv[a++] = "restore";
    argv[a++] = "--image-path";
    argv[a++] = (char *)o->restore_image;
    argv[a++] = "--work-path";
    argv[a++] = (char *)o->restore_image;
    argv[a++] = "--detach";
    argv[a++] = "--bundle";
    argv[a++] = (char *)o->bundle;
  } else {
    argv[a++] = "create";
    argv[a++] = "--bundle";
    argv[a++] = (char *)o->bundle;
  }
  argv[a++] = "--pid-file";
  argv[a++] = (char *)o->container_pid_file;
  if (o->terminal) {
    argv[a++] = "--console-socket";
    argv[a++] = io.console_path;
  }
  argv[a++] = (char *)o->id;
  argv[a] = NULL;

  unlink(o->container_pid_file); /* a stale pid must not be mistaken for this container's */
  pid_t runtime = spawn_runtime(argv, io.child_in, io.child_out, io.child_err, &err);
  close_child_ends(&io);
  if (runtime < 0) {
    remove_console(&io);
    return fail_early(c, err.msg);
  }
  int status = wait_create(c, &io, runtime);
  remove_console(&io);
  char msg[4096];
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    runtime_error(io.err_read, status,
                  o->exec_process ? "exec" : o->restore_image ? "restore" : "create", msg, sizeof msg);
    return fail_early(c, msg);
  }
  if (o->terminal) close(io.err_read);
  if (o->terminal && c->pty_fd < 0)
    return fail_early(c, "the runtime succeeded but sent no terminal on the console socket");
  if (read_pid_file(o->container_pid_file, &c->pid, &err) < 0) return fail_early(c, err.msg);
  for (size_t i = 0; i < io.nreaped; i++) {
    if (io.reaped_pid[i] == c->pid) {
      c->exited = true;
      c->status = io.reaped_status[i];
      if (clock_gettime(CLOCK_REALTIME, &c->exited_ts) < 0) c->exited_ts = (struct timespec){0};
    }
  }
  if (o->terminal) {
    if (set_nonblock(c->pty_fd, &err) < 0) return fail_early(c, err.msg);
    c->out_fd = c->pty_fd;
    if (o->stdin_open) c->stdin_fd = c->pty_fd;
  } else {
    if (set_nonblock(c->out_fd, &err) < 0 || set_nonblock(c->err_fd, &err) < 0 ||
        (c->stdin_fd >= 0 && set_nonblock(c->stdin_fd, &err) < 0))
      return fail_early(c, err.msg);
  }
  return 0;
}

void abandon_container(struct container *c) {
  const struct monitor_opts *o = c->o;
  /* A process reaped during the create may have a reused pid by now: only a live one is ours. */
  if (c->pid > 0 && !c->exited) kill_tree(c->pid);
  if (o->exec_process) return; /* the container itself is not ours to delete */
  char *argv[8];
  int a = runtime_argv(argv, o->runtime, o->runtime_root);
  argv[a++] = "delete";
  argv[a++] = "--force";
  argv[a++] = (char *)o->id;
  argv[a] = NULL;
  crib_err err = {0};
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) {
    crib_fail(&err, errno, "open `/dev/null`");
    crib_err_print(MONITOR_PROG, &err);
    return;
  }
  pid_t pid = spawn_runtime(argv, devnull, devnull, 2, &err);
  close(devnull);
  if (pid < 0) {
    crib_err_print(MONITOR_PROG, &err);
    return;
  }
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno == EINTR) continue;
    crib_fail(&err, errno, "waitpid `%s delete`", o->runtime);
    crib_err_print(MONITOR_PROG, &err);
    return;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fprintf(stderr, MONITOR_PROG ": `%s delete --force %s` failed (status %d)\n", o->runtime, o->id,
            status);
}
