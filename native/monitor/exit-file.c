/* The exit file the daemon reads (also after a restart, when it was down as the container died):
 *   {"exitCode": N, "signal": S|null, "exitedAt": "<RFC3339Nano>", "oomKilled": bool}
 * exitCode is 128+signal for a signalled process, as kubelet expects. Written to a temp name and
 * renamed, so a reader never sees half a file. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int exit_file_write(const char *path, int wait_status, bool oom_killed, crib_err *err) {
  int code = 0, sig = 0;
  if (WIFSIGNALED(wait_status)) {
    sig = WTERMSIG(wait_status);
    code = 128 + sig;
  } else if (WIFEXITED(wait_status)) {
    code = WEXITSTATUS(wait_status);
  }
  char ts[TIMESTAMP_MAX];
  format_now(ts);
  char body[256];
  char sigtxt[16];
  if (sig) snprintf(sigtxt, sizeof sigtxt, "%d", sig);
  else strcpy(sigtxt, "null");
  int n = snprintf(body, sizeof body,
                   "{\"exitCode\": %d, \"signal\": %s, \"exitedAt\": \"%s\", \"oomKilled\": %s}\n",
                   code, sigtxt, ts, oom_killed ? "true" : "false");

  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
    return crib_fail(err, ENAMETOOLONG, "exit file path `%s`", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return crib_fail(err, errno, "open `%s`", tmp);
  if (crib_write_all(fd, body, (size_t)n) < 0 || fsync(fd) < 0) {
    int e = errno;
    close(fd);
    unlink(tmp);
    return crib_fail(err, e, "write `%s`", tmp);
  }
  close(fd);
  if (rename(tmp, path) < 0) {
    int e = errno;
    unlink(tmp);
    return crib_fail(err, e, "rename `%s` to `%s`", tmp, path);
  }
  /* The rename itself must survive a crash of the node, or the daemon finds no exit code. */
  char dir[PATH_MAX];
  strcpy(dir, path);
  int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return 0;
}
