#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container.h"
#include "crib-exec-capture.h"
#include "crib-proc-tree.h"
#include "crib-signal-reset.h"
#include "files.h"
#include "namespaces.h"
#include "pidns-fork.h"
#include "process.h"
#include "procfs.h"
#include "seccomp-filter.h"
#include "spec.h"
#include "state.h"
#include "sync.h"
#include "terminal.h"
#include "workdir.h"


/* Namespaces of pid that differ from ours (joining our own user namespace is an error). */
static int plan_from_pid(pid_t pid, crib_ns_plan *p, crib_err *err) {
  static const int flags[] = {CLONE_NEWIPC, CLONE_NEWUTS,    CLONE_NEWNET, CLONE_NEWPID,
                              CLONE_NEWNS,  CLONE_NEWCGROUP, CLONE_NEWUSER, CLONE_NEWTIME};
  memset(p, 0, sizeof *p);
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
    const char *name = crib_ns_proc_name(flags[i]);
    char theirs[64], ours[64];
    snprintf(theirs, sizeof theirs, "/proc/%d/ns/%s", (int)pid, name);
    snprintf(ours, sizeof ours, "/proc/self/ns/%s", name);
    struct stat a, b;
    if (stat(theirs, &a) < 0) {
      if (errno == ENOENT && flags[i] == CLONE_NEWTIME) continue; /* older kernels */
      crib_ns_plan_close(p);
      return crib_fail(err, errno, "stat `%s`", theirs);
    }
    if (stat(ours, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) continue;
    int fd = open(theirs, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      crib_ns_plan_close(p);
      return crib_fail(err, errno, "open `%s`", theirs);
    }
    p->join_fd[p->n_join] = fd;
    p->join_flag[p->n_join] = flags[i];
    snprintf(p->join_path[p->n_join], sizeof p->join_path[0], "%s", theirs);
    p->n_join++;
  }
  return 0;
}

/* The setup process: forked by the runtime into the container's cgroup, but in the runtime's PID
 * namespace, where no process of the container sees it (pidns-fork.h). It joins every other
 * namespace of the container, takes on the process's terminal, cwd, limits, LSM labels, seccomp
 * filter (unless no_new_privs lets the last process load it), user and capabilities, closes every
 * fd the host gave it, and only then forks the process that enters the container's PID
 * namespace and execs. That one holds the container's credentials from its first instruction
 * and can be nothing but the container's. */
static int child_run(json_t *spec, json_t *process, const crib_cgroup *cg, bool in_cgroup,
                     crib_ns_plan *plan, const crib_lsm_host *lsm, int sync_fd, int preserve_fds,
                     crib_err *err) {
  crib_sync_msg m;
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) return crib_fail(err, errno, "prctl PDEATHSIG");
  /* The process starts with default signals whoever started us: a daemon's posix_spawn leaves
   * glibc's internal signals ignored, and an ExecSync's parent blocks SIGCHLD. */
  if (reset_signals_for_exec() < 0) return crib_fail(err, errno, "reset the signal dispositions");
  int self_cg = in_cgroup ? 0 : crib_cg_enter_self(cg, err);
  if (self_cg < 0) return -1;
  if (crib_sync_send(sync_fd, CRIB_SYNC_HELLO, self_cg == 0, -1, err) < 0) return -1;
  if (crib_sync_recv(sync_fd, &m, NULL, err) < 0) return -1;
  if (m.type != CRIB_SYNC_ACK) return crib_fail(err, 0, "sync: expected ack");
  /* Made before joining the container's mount namespace, whose /proc the container controls:
   * every /proc write below goes through this one (procfs.h). It is a procfs of the runtime's
   * PID namespace, so it is closed before the fork into the container's. */
  int proc = crib_procfs_open(err);
  if (proc < 0) return -1;
  /* The PID namespace too: for our children only (the fork below), user namespace last. */
  if (crib_ns_join(plan, ~0, err) < 0) return -1;
  crib_ns_plan_close(plan);
  /* Nothing our caller leaked to us stays reachable through /proc/self/fd (see files.h); the
   * private procfs handle stays until the /proc writes below are done. */
  int keep_setup[] = {sync_fd, proc};
  if (crib_close_fds_from(3 + preserve_fds, keep_setup, 2, err) < 0) return -1;
  /* The pty's peer becomes the stdio of the process that execs, after the fork: taking it as
   * the controlling terminal makes its caller a session leader, whose exit would hang it up. */
  int peer = -1;
  if (crib_json_bool(process, "terminal", false)) {
    int master;
    if (crib_pty_open(proc, &master, &peer, err) < 0) return -1;
    if (crib_pty_set_size(master, json_object_get(process, "consoleSize"), err) < 0 ||
        crib_sync_send(sync_fd, CRIB_SYNC_PTY, 0, master, err) < 0) {
      close(master);
      close(peer);
      return -1;
    }
    close(master);
  }
  if (crib_enter_workdir(process, err) < 0) return -1;
  if (crib_process_rlimits(process, err) < 0) return -1;
  char warn[2048];
  if (crib_process_oom_score(process, proc, warn, sizeof warn, err) < 0) return -1;
  if (warn[0]) crib_sync_send_warning(sync_fd, warn);
  /* Inherited by the fork: the oom score, and the exec labels (kept in the credentials). */
  if (crib_process_lsm(process, lsm, proc, warn, sizeof warn, err) < 0) return -1;
  if (warn[0]) crib_sync_send_warning(sync_fd, warn);
  close(proc);
  scmp_filter_ctx filter;
  if (crib_seccomp_compile(json_object_get(json_object_get(spec, "linux"), "seccomp"), &filter, err) < 0)
    return -1;
  bool nnp = crib_json_bool(process, "noNewPrivileges", false);
  /* Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load while we still have it (the
   * filter is inherited by the fork, which the profile must allow, as any that lets a container
   * start a process does). With it, the forked process loads it last. */
  if (!nnp && crib_seccomp_load(filter, err) < 0) return -1;
  if (crib_process_identity(process, warn, sizeof warn, err) < 0) return -1;
  if (warn[0]) crib_sync_send_warning(sync_fd, warn);
  static char exe[PATH_MAX];
  if (crib_process_find(process, exe, sizeof exe, err) < 0) return -1;
  if (crib_process_finish(process, err) < 0) return -1;
  char **argv = crib_process_strv(json_object_get(process, "args"));
  char **envp = crib_process_strv(json_object_get(process, "env"));
  if (!argv || !envp) return crib_fail(err, ENOMEM, "argv");

  pid_t ours;
  if (crib_fork_into_pidns(sync_fd, &ours, err) < 0) return -1;
  /* The forked process, in the container's PID namespace: its own death signal is unset, so it
   * outlives a --detach exec. */
  if (peer >= 0 && crib_pty_become_stdio(peer, err) < 0) return -1;
  if (nnp && crib_seccomp_load(filter, err) < 0) return -1;
  int keep[] = {sync_fd};
  if (crib_close_fds_from(3 + preserve_fds, keep, 1, err) < 0) return -1;
  if (crib_sync_send(sync_fd, CRIB_SYNC_PARKED, 0, -1, err) < 0) return -1;
  /* The parent reads nothing after PARKED: the sync socket goes too, so the program gets stdio
   * and the preserved fds only. A failing execve still reports on stderr. */
  crib_err e = {0};
  if (crib_close_fds_from(3 + preserve_fds, NULL, 0, &e) < 0) {
    crib_err_print("crib-runtime", &e);
    _exit(1);
  }
  execve(exe, argv, envp);
  fprintf(stderr, "crib-runtime: exec `%s`: %s\n", exe, strerror(errno));
  _exit(127);
}

/* The setup process's stdio: /dev/null in, the pipes out; the process it forks inherits them. */
static int capture_stdio(const struct crib_capture_fds *c, crib_err *err) {
  if (dup2(c->devnull, 0) < 0 || dup2(c->out[1], 1) < 0 || dup2(c->err[1], 2) < 0)
    return crib_fail(err, errno, "dup2 the exec's stdio");
  return 0;
}

/* ExecSync's timeout: the process and whatever it started (it is our child, so it stays a zombie
 * for the capture to reap, never a pid reused). */
static void kill_exec_tree(void *ctx) {
  kill_tree(*(const pid_t *)ctx);
}

static volatile sig_atomic_t forward_to;
static void forward(int sig) {
  if (forward_to > 0) kill(forward_to, sig);
}

int crib_container_exec(const crib_exec_opts *o, crib_err *err) {
  crib_state st;
  if (crib_state_read(o->root, o->id, &st, err) < 0) return -1;
  int rc = -1;
  json_t *spec = NULL;
  crib_ns_plan plan = {0};
  int sync[2] = {-1, -1};
  pid_t child = -1;
  struct crib_capture_fds cap = CRIB_CAPTURE_FDS_NONE;
  /* Until the capture's own clock takes over: a setup that outlasts the timeout ends us, and the
   * setup process with us (its death signal). */
  if (o->capture && o->timeout_sec) alarm((unsigned)o->timeout_sec);
  if (crib_state_status(&st) == CRIB_STOPPED) {
    crib_fail(err, 0, "container `%s` is stopped: cannot exec in it", o->id);
    goto out;
  }
  if (crib_json_bool(o->process, "terminal", false) && !o->console_socket) {
    crib_fail(err, 0, "process.terminal is set: --console-socket is required");
    goto out;
  }
  spec = crib_spec_load(st.bundle, err);
  if (!spec) goto out;
  crib_cgroup cg;
  if (crib_container_cgroup(&st, &cg, err) < 0) goto out;
  if (plan_from_pid(st.pid, &plan, err) < 0) goto out;
  /* The process that execs is the setup process's child: it comes to us when that one exits. */
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
    crib_fail(err, errno, "prctl PR_SET_CHILD_SUBREAPER");
    goto out;
  }
  if (crib_sync_pair(sync, err) < 0) goto out;
  if (o->capture && crib_capture_fds_open(&cap, err) < 0) goto out;
  crib_lsm_host lsm;
  crib_lsm_probe(&lsm); /* here: the child reads the container's /sys once it has joined */
  bool in_cgroup;
  child = crib_cg_fork(&cg, 0, &in_cgroup);
  if (child < 0) {
    crib_fail(err, errno, "fork");
    goto out;
  }
  if (child == 0) {
    close(sync[0]);
    crib_err e = {0};
    if (!o->capture || capture_stdio(&cap, &e) == 0)
      child_run(spec, o->process, &cg, in_cgroup, &plan, &lsm, sync[1], o->preserve_fds, &e);
    crib_sync_send_error(sync[1], &e);
    _exit(1);
  }
  close(sync[1]);
  sync[1] = -1;
  if (o->capture) {
    /* Ours are the read ends: the pipes end once every process holding a write end is gone. */
    close(cap.out[1]);
    close(cap.err[1]);
    close(cap.devnull);
    cap.out[1] = cap.err[1] = cap.devnull = -1;
    signal(SIGPIPE, SIG_IGN); /* a caller gone while we print: EPIPE, reported */
  }
  pid_t proc_pid = -1; /* the process that execs, forked by the setup process (child) */
  for (bool parked = false; !parked;) {
    crib_sync_msg m;
    int fd = -1;
    if (crib_sync_recv(sync[0], &m, &fd, err) < 0) goto kill_child;
    switch (m.type) {
    case CRIB_SYNC_HELLO:
      if ((m.value != 1 && crib_cg_enter(&cg, child, err) < 0) ||
          crib_sync_send(sync[0], CRIB_SYNC_ACK, 0, -1, err) < 0) {
        crib_sync_prefer_child_error(sync[0], err);
        goto kill_child;
      }
      break;
    case CRIB_SYNC_PID:
      if (proc_pid > 0) {
        crib_fail(err, 0, "sync: a second pid reported (%d)", m.value);
        goto kill_child;
      }
      if (crib_check_reported_pid((pid_t)m.value, child, err) < 0) goto kill_child;
      proc_pid = (pid_t)m.value;
      break;
    case CRIB_SYNC_PTY: {
      int r = fd < 0 ? crib_fail(err, 0, "sync: pty message without a fd")
                     : crib_console_socket_send(o->console_socket, fd, "pty", err);
      if (fd >= 0) close(fd);
      if (r < 0) goto kill_child;
      break;
    }
    case CRIB_SYNC_WARNING:
      fprintf(stderr, "crib-runtime: %s\n", m.text);
      break;
    case CRIB_SYNC_ERROR:
      err->errnum = m.errnum;
      snprintf(err->msg, sizeof err->msg, "%s", m.text);
      crib_err_wrap(err, "exec in `%s`", o->id);
      goto kill_child;
    case CRIB_SYNC_PARKED:
      parked = true;
      break;
    default:
      crib_fail(err, 0, "sync: unexpected message %d", m.type);
      goto kill_child;
    }
  }
  if (proc_pid <= 0) {
    crib_fail(err, 0, "exec in `%s`: the setup process reported no pid", o->id);
    goto kill_child;
  }
  /* The setup process exits once it has reported; then the process is ours to wait for. */
  while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
  }
  child = -1;
  if (o->pid_file && crib_write_pid_file(o->pid_file, proc_pid, err) < 0) goto kill_child;
  if (o->detach) {
    rc = 0;
    goto out;
  }
  if (o->capture) {
    alarm(0);
    struct crib_capture_opts co = {.pid = proc_pid, .out_fd = cap.out[0], .err_fd = cap.err[0],
                                   .sigchld_fd = cap.sigchld, .timeout_sec = o->timeout_sec,
                                   .max_output = o->capture_max, .on_timeout = kill_exec_tree, .ctx = &proc_pid};
    struct crib_capture_result res;
    crib_capture_run(&co, &res);
    cap.out[0] = cap.err[0] = -1; /* closed by the capture */
    rc = 0;
    if (crib_capture_print(1, &res) < 0) rc = crib_fail(err, errno, "write the exec's result to stdout");
    crib_capture_free(&res);
    goto out;
  }
  forward_to = proc_pid;
  struct sigaction sa = {.sa_handler = forward};
  sigemptyset(&sa.sa_mask);
  int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
  for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++) sigaction(sigs[k], &sa, NULL);
  int status;
  while (waitpid(proc_pid, &status, 0) < 0) {
    if (errno != EINTR) {
      crib_fail(err, errno, "wait for exec process %d", (int)proc_pid);
      goto out;
    }
  }
  rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  goto out;
kill_child:
  if (child > 0) kill(child, SIGKILL);
  if (proc_pid > 0) kill(proc_pid, SIGKILL);
  if (child > 0) waitpid(child, NULL, 0);
  if (proc_pid > 0) waitpid(proc_pid, NULL, 0);
out:
  if (sync[0] >= 0) close(sync[0]);
  if (sync[1] >= 0) close(sync[1]);
  crib_capture_fds_close(&cap);
  crib_ns_plan_close(&plan);
  json_decref(spec);
  crib_state_free(&st);
  return rc;
}
