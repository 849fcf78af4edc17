/* Entering a PID namespace, which only a fork does: setns or unshare of CLONE_NEWPID applies to
 * the caller's children, never to the caller.
 *
 * This is also what keeps the host out of reach of the container (see container.h and exec.h):
 * the process that sets a container up stays in the runtime's PID namespace, where no container
 * process can see it, while it joins the container's other namespaces, pivots, drops to the
 * container's credentials and closes every fd of the host; only then does it fork the process
 * that enters the container's PID namespace. A container with CAP_SYS_PTRACE in a shared-PID
 * pod can attach to anything it sees there, non-dumpable or not: what it sees must never hold
 * more than the container itself. */
#ifndef CRIB_PIDNS_FORK_H
#define CRIB_PIDNS_FORK_H

#include <sys/types.h>

#include "crib-error.h"

/* Fork into the PID namespace the caller has set for its children. In the parent: report the
 * child's pid to the runtime (CRIB_SYNC_PID on sync_fd), pass it on to the child, and exit; it
 * never returns there. In the child: wait for that (the runtime so has our pid before any
 * message of ours), then return 0 with *runtime_pid set to our pid as the runtime sees it.
 * -1 when the fork itself fails (nothing was forked). */
int crib_fork_into_pidns(int sync_fd, pid_t *runtime_pid, crib_err *err);

/* Runtime side, on CRIB_SYNC_PID: is pid a child of the setup process (or ours, once the setup
 * process has exited and it was reparented to us as its subreaper)? Anything in the container's
 * PID namespace may hold the sync socket and could report a pid of its choice, such as the
 * daemon's, which `kill` and `delete` would then signal. */
int crib_check_reported_pid(pid_t pid, pid_t setup, crib_err *err);

#endif
