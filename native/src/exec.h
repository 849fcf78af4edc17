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
} crib_exec_opts;

/* Returns the process's exit code (128+signal), or 0 with detach; -1 with err. */
int crib_container_exec(const crib_exec_opts *o, crib_err *err);

#endif
