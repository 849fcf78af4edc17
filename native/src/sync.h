/* Typed messages between `create`/`exec` (the parent) and the process it forks, over a
 * SOCK_SEQPACKET socketpair so each message arrives whole. A failure in the child travels as
 * SYNC_ERROR with its errno and text, so the parent prints `crib-runtime: <what>: <strerror>`
 * instead of a bare exit status. A message may carry one fd (the pty master). */
#ifndef CRIB_SYNC_H
#define CRIB_SYNC_H

#include "crib-error.h"

typedef enum {
  CRIB_SYNC_ERROR = 1,   /* child -> parent: errnum + text; the child exits after it */
  CRIB_SYNC_HELLO,       /* child -> parent: ready for the parent's part (cgroup, id maps);
                            value 1: the child moved itself into the cgroup already */
  CRIB_SYNC_ACK,         /* parent -> child: the parent's part is done */
  CRIB_SYNC_PID,         /* child -> parent: value = pid of the container init (in our pid ns) */
  CRIB_SYNC_PTY,         /* child -> parent: carries the pty master fd */
  CRIB_SYNC_PARKED,      /* child -> parent: set up, now blocked on exec.fifo (or execing) */
  CRIB_SYNC_WARNING,     /* child -> parent: text to print as a warning, setup continues */
  CRIB_SYNC_DONE,        /* parent -> child: state.json is written, the container exists */
  CRIB_SYNC_HOOKS,       /* child -> parent: namespaces exist, run prestart/createRuntime hooks
                            (the parent answers ACK) */
} crib_sync_type;

typedef struct crib_sync_msg {
  int type;
  int errnum;
  int value;
  char text[2048];
} crib_sync_msg;

int crib_sync_pair(int fds[2], crib_err *err);
int crib_sync_send(int fd, int type, int value, int pass_fd, crib_err *err);
/* Forward an error (or warning text) from the child to the parent; best effort. */
void crib_sync_send_error(int fd, const crib_err *e);
void crib_sync_send_warning(int fd, const char *text);
/* Receive one message; *recv_fd gets a passed fd or -1 (may be NULL when none is expected).
 * EOF (the child died without a word) is reported as an error. */
int crib_sync_recv(int fd, crib_sync_msg *m, int *recv_fd, crib_err *err);

/* After our own step failed while talking to the child (EPIPE, ESRCH): if the child had already
 * reported an error and exited, its report is the real cause. Reads queued messages without
 * blocking; on finding SYNC_ERROR, replaces *err with it. */
void crib_sync_prefer_child_error(int fd, crib_err *err);

#endif
