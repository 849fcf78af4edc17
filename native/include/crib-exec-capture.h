/* CRI ExecSync's capture: an exec'd process's stdout and stderr read apart from pipes, each up to
 * a cap (the rest read and dropped, and reported as truncated), until the process has exited and
 * its pipes are done; killed when its time runs out; the result printed as one JSON object:
 *   {"exitCode": N, "stdout": "<base64>", "stderr": "<base64>", "timedOut": bool,
 *    "truncated": bool}
 * crib-runtime's `exec --capture-output` runs it as the exec'd process's parent; the monitor's
 * exec-sync mode (other runtimes' ExecSync) as the runtime's. */
#ifndef CRIB_EXEC_CAPTURE_H
#define CRIB_EXEC_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "crib-error.h"

/* What the capturing parent makes before it forks the process to capture: the pipes, /dev/null
 * for the process's stdin, and a signalfd for SIGCHLD, which stays blocked from here on so no
 * exit is lost before the signalfd is read (the child restores the default mask before its exec:
 * crib-signal-reset.h). All close-on-exec; -1 where not made. */
struct crib_capture_fds {
  int out[2], err[2], devnull, sigchld;
};
#define CRIB_CAPTURE_FDS_NONE {.out = {-1, -1}, .err = {-1, -1}, .devnull = -1, .sigchld = -1}
/* 0, or -1 with err (what was made is left for crib_capture_fds_close). */
int crib_capture_fds_open(struct crib_capture_fds *c, crib_err *err);
/* Closes whatever is still open, and marks it closed. */
void crib_capture_fds_close(struct crib_capture_fds *c);

struct crib_capture_opts {
  pid_t pid;                 /* the waited-for child: its exit ends the capture */
  int out_fd, err_fd;        /* the pipes' read ends: made non-blocking, and closed here */
  int sigchld_fd;            /* a signalfd for SIGCHLD, which the caller blocked before the fork */
  unsigned long timeout_sec; /* 0: no timeout, as in CRI */
  size_t max_output;         /* per stream */
  /* Called once when the time is up; `pid`'s whole tree is killed after a grace period if it
   * has not exited by then. */
  void (*on_timeout)(void *ctx);
  void *ctx;
};

struct crib_capture_result {
  int status; /* the wait status of `pid` */
  bool timed_out, truncated;
  unsigned char *out, *err;
  size_t out_len, err_len;
};

/* Captures until the end; reaps every child that exits meanwhile. Always fills `r` (free it with
 * crib_capture_free). */
void crib_capture_run(const struct crib_capture_opts *o, struct crib_capture_result *r);
/* The result's JSON, written to fd. 0, or -1 with errno set. */
int crib_capture_print(int fd, const struct crib_capture_result *r);
void crib_capture_free(struct crib_capture_result *r);

#endif
