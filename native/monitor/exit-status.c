/* The exit status of the monitored process, as the daemon gets it: in the control socket's exit
 * event and status reply (ctl.c), and in the exit file it reads after a restart.
 *   {"exitCode": N, "signal": S|null, "exitedAt": "<RFC3339Nano>", "oomKilled": bool}
 * exitCode is 128+signal for a signalled process, as kubelet expects; exitedAt is when the
 * monitor reaped the process, not when the file could be written (that may be much later on a
 * full disk). The file is written to a temp name, synced and renamed, so a reader never sees
 * half of it. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* The one atomic writer of the native code is crib_atomic_write_file (native/common/
 * atomic-file.c, crib-atomic-file.h), same signature; until that is merged, this local copy of
 * the same steps keeps the monitor's exit file atomic. */
static int write_file_atomically(const char *path, const void *data, size_t len, mode_t mode,
                                 crib_err *err) {
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
    return crib_fail(err, ENAMETOOLONG, "exit file path `%s`", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return crib_fail(err, errno, "open `%s`", tmp);
  if (crib_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
    int e = errno;
    close(fd);
    unlink(tmp);
    return crib_fail(err, e, "write `%s`", tmp);
  }
  if (close(fd) < 0) {
    int e = errno;
    unlink(tmp);
    return crib_fail(err, e, "close `%s`", tmp);
  }
  if (rename(tmp, path) < 0) {
    int e = errno;
    unlink(tmp);
    return crib_fail(err, e, "rename `%s` to `%s`", tmp, path);
  }
  /* The rename itself must survive a crash of the node, or the daemon finds no exit code. */
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return crib_fail(err, errno, "open directory of `%s`", path);
  int rc = fsync(dfd);
  int e = errno;
  close(dfd);
  if (rc < 0) return crib_fail(err, e, "fsync directory of `%s`", path);
  return 0;
}

int exit_status_write_file(const char *path, const struct exit_status *es, crib_err *err) {
  struct json_buf b = {0};
  if (exit_status_json(es, &b) < 0 || json_buf_append(&b, "\n", 1) < 0) {
    json_buf_free(&b);
    return crib_fail(err, ENOMEM, "format exit file `%s`", path);
  }
  int rc = write_file_atomically(path, b.data, b.len, 0644, err);
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
