/* exec-sync mode (CRI ExecSync) for runtime handlers other than crib-runtime (runc, crun), whose
 * exec cannot capture its process's output itself as crib-runtime's `exec --capture-output` does
 * (with a process less): run `<runtime> exec --process P --pid-file F ID` with pipes and capture
 * its output as crib-exec-capture.h says, killing the exec'd process's tree (read from the pid
 * file) when the timeout passes. Not daemonised: the caller waits for it. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "crib-exec-capture.h"

struct kill_exec_ctx {
  const char *pid_file;
  pid_t runtime;
};

static void kill_exec(void *ctx) {
  const struct kill_exec_ctx *k = ctx;
  pid_t pid;
  crib_err err;
  /* Kill the exec'd process and let the runtime reap it and exit: killing the runtime too would
   * leave the process a zombie in the container until some init reaps it (visible to `ps`).
   * The pid file is missing when the runtime has not started the process yet: killing the
   * runtime's own tree then stops it before it does. The caller's grace period kills the
   * runtime if it lingers. */
  if (read_pid_file(k->pid_file, &pid, &err) == 0) kill_tree(pid);
  else kill_tree(k->runtime);
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

  struct crib_capture_fds cap = CRIB_CAPTURE_FDS_NONE;
  if (crib_capture_fds_open(&cap, &err) < 0) {
    crib_capture_fds_close(&cap);
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
  pid_t runtime = spawn_runtime(argv, cap.devnull, cap.out[1], cap.err[1], &err);
  close(cap.devnull);
  close(cap.out[1]);
  close(cap.err[1]);
  cap.devnull = cap.out[1] = cap.err[1] = -1;
  if (runtime < 0) {
    crib_capture_fds_close(&cap);
    return exec_failed(&err);
  }
  struct kill_exec_ctx kc = {.pid_file = pid_file, .runtime = runtime};
  struct crib_capture_opts co = {.pid = runtime, .out_fd = cap.out[0], .err_fd = cap.err[0], .sigchld_fd = cap.sigchld,
                                 .timeout_sec = o->timeout_sec, .max_output = o->max_output,
                                 .on_timeout = kill_exec, .ctx = &kc};
  struct crib_capture_result res;
  crib_capture_run(&co, &res);
  cap.out[0] = cap.err[0] = -1; /* closed by the capture */
  crib_capture_fds_close(&cap);
  if (remove_pid_file(pid_file, &err) < 0) crib_err_print(MONITOR_PROG, &err); /* the result stands */
  remove_legacy_dir();

  int rc = 0;
  if (crib_capture_print(1, &res) < 0) {
    crib_fail(&err, errno, "write result to stdout");
    crib_err_print(MONITOR_PROG, &err);
    rc = 1;
  }
  crib_capture_free(&res);
  return rc;
}
