/* `exec`: run one more process inside a live container: joins its namespaces (those that
 * differ from ours) and its cgroup, then applies the process's user, capabilities,
 * no_new_privs and the container's seccomp filter before execve. All of that is done by a setup
 * process that stays in our PID namespace; the process that execs is forked into the
 * container's only at the end, with nothing of the host left (pidns-fork.h). */
#ifndef CRIB_EXEC_H
#define CRIB_EXEC_H

#include <jansson.h>
#include <stdbool.h>

#include "crib-error.h"

typedef struct crib_exec_opts {
  const char *root;
  const char *id;
  json_t *process;            /* a checked OCI process object */
  const char *console_socket; /* required when process.terminal */
  const char *pid_file;
  bool detach;
  int preserve_fds;           /* fds 3..3+n-1 pass to the process */
  /* ExecSync (--capture-output MAX): the process's stdout and stderr go to pipes of ours, each
   * kept up to capture_max bytes, its stdin is /dev/null, and the result is printed as JSON on
   * our stdout once it has exited (crib-exec-capture.h). With timeout_sec (0: none), its tree is
   * killed when that passes; and a setup that takes that long ends the runtime by SIGALRM. */
  bool capture;
  size_t capture_max;
  unsigned long timeout_sec;
} crib_exec_opts;

/* Returns the process's exit code (128+signal), or 0 with detach or capture (the exit code is
 * in the printed result); -1 with err. */
int crib_container_exec(const crib_exec_opts *o, crib_err *err);

#endif
