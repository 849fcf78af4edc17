/* process.terminal: a pty made inside the container's devpts, its master handed to the caller
 * through --console-socket (SCM_RIGHTS, as runc does), its slave becoming the process's stdio
 * and controlling terminal. */
#ifndef CRIB_TERMINAL_H
#define CRIB_TERMINAL_H

#include <jansson.h>

#include "crib-error.h"

/* Open a new pty from the current root's /dev/pts/ptmx (checked, see terminal.c), reopened
 * through the procfs handle proc; the master and the slave (peer) come back as fds. */
int crib_pty_open(int proc, int *master, int *peer, crib_err *err);

/* Apply process.consoleSize (may be NULL) to the pty. */
int crib_pty_set_size(int fd, json_t *console_size, crib_err *err);

/* Make fd (the slave) stdin/stdout/stderr and the controlling terminal of a new session. */
int crib_pty_become_stdio(int slave, crib_err *err);

/* Connect to the unix socket at path and send fd with SCM_RIGHTS (payload: the name). */
int crib_console_socket_send(const char *path, int fd, const char *name, crib_err *err);

#endif
