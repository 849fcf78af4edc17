/* The two fifos in a container's state dir that carry `start` (state.h):
 *
 *   exec.fifo          start -> init. One byte releases the parked init. It exists from create
 *                      until start has released the init: its presence is what "created" means.
 *   exec-result.fifo   init -> start. The init writes "0" just before its execve of the
 *                      container's program, and "E<text>" when something fails instead (the
 *                      startContainer hook, the execve itself), then exits.
 *
 * The init holds both open O_RDWR (opened by create before the fork: after pivot_root it could not
 * reach them by path) and close-on-exec, so its execve, or its death, closes its end of
 * exec-result.fifo: that EOF is what `start` waits for. "0" then EOF: the program runs. Anything
 * else: start fails with the init's own words, or says the init died without a word (killed).
 *
 * Why start must wait: a parked init is PID 1 of its PID namespace, which ignores every signal it
 * has no handler for; a StopContainer's SIGTERM sent after StartContainer returned, but before the
 * program's execve installed its handlers, was lost (the stop then waited out its full timeout).
 *
 * A subtlety of fifos the design leans on: a reader that opened while no writer existed never sees
 * POLLHUP. start opens exec-result.fifo while the init holds it, so POLLHUP does come, and it polls
 * a pidfd of the init alongside, so an init that died before start opened the fifo cannot hang it.
 *
 * Containers created by an earlier crib-runtime have no exec-result.fifo: start releases them as it
 * used to, without waiting. */
#ifndef CRIB_EXEC_FIFO_H
#define CRIB_EXEC_FIFO_H

#include "crib-error.h"
#include "state.h"

#define CRIB_EXEC_FIFO "exec.fifo"
#define CRIB_EXEC_RESULT_FIFO "exec-result.fifo"

/* create: make both fifos in dir and open them O_RDWR|O_CLOEXEC for the init to inherit. */
int crib_exec_fifos_make(const char *dir, int *go_fd, int *result_fd, crib_err *err);

/* init, just before execve: "0". */
int crib_exec_result_reached(int result_fd, crib_err *err);

/* init, on a failure after the park (before the execve, or of it): "E<message>". Best effort: the
 * init exits right after, and start reports a silent death the same way. */
void crib_exec_result_failed(int result_fd, const crib_err *e);

/* start: release the parked init of st and wait until it has exec'd its program (0) or failed
 * or died (-1, with its reason). The caller holds the start lock and has seen st created. */
int crib_exec_release(const crib_state *st, crib_err *err);

#endif
