/* `exec`: run one more process inside a live container: joins its namespaces (those that
 * differ from ours) and its cgroup, then applies the process's user, capabilities,
 * no_new_privs and the container's seccomp filter before execve. */
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
