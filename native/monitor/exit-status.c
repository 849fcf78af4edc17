/* The exit status of the monitored process, as the daemon gets it: in the control socket's exit
 * event and status reply (ctl.c), and in the exit file it reads after a restart.
 *   {"exitCode": N, "signal": S|null, "exitedAt": "<RFC3339Nano>", "oomKilled": bool}
 * exitCode is 128+signal for a signalled process, as kubelet expects; exitedAt is when the
 * monitor reaped the process, not when the file could be written (that may be much later on a
 * full disk). The file is replaced by the one native atomic writer (crib_atomic_write_file), so
 * a reader never sees half of it and a crash of the node never loses the rename. */
#include "monitor.h"

#include "crib-atomic-file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

void exit_status_from_wait(struct exit_status *es, int wait_status, const struct timespec *when,
                           bool oom_killed) {
  es->code = 0;
  es->signal = 0;
  if (WIFSIGNALED(wait_status)) {
    es->signal = WTERMSIG(wait_status);
    es->code = 128 + es->signal;
  } else if (WIFEXITED(wait_status)) {
    es->code = WEXITSTATUS(wait_status);
  }
  format_timestamp(es->exited_at, when);
  es->oom_killed = oom_killed;
}

int exit_status_json(const struct exit_status *es, struct json_buf *b) {
  char sig[16];
  if (es->signal) snprintf(sig, sizeof sig, "%d", es->signal);
  else strcpy(sig, "null");
  json_buf_printf(b, "{\"exitCode\": %d, \"signal\": %s, \"exitedAt\": \"%s\", \"oomKilled\": %s}",
                  es->code, sig, es->exited_at, es->oom_killed ? "true" : "false");
  return b->failed ? -1 : 0;
}

int exit_status_write_file(const char *path, const struct exit_status *es, crib_err *err) {
  struct json_buf b = {0};
  if (exit_status_json(es, &b) < 0 || json_buf_append(&b, "\n", 1) < 0) {
    json_buf_free(&b);
    return crib_fail(err, ENOMEM, "format exit file `%s`", path);
  }
  int rc = crib_atomic_write_file(path, b.data, b.len, 0644, err);
  json_buf_free(&b);
  return rc;
}

bool exit_status_write_may_heal(int errnum) {
  switch (errnum) {
  case ENOSPC: case EDQUOT: case EIO: case ENOMEM: case EMFILE: case ENFILE: case EAGAIN:
  case EINTR: case EROFS:
    return true;
  default:
    return false;
  }
}
