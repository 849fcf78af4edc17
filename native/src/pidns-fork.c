#include "pidns-fork.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crib-io.h"
#include "files.h"
#include "sync.h"

int crib_fork_into_pidns(int sync_fd, pid_t *runtime_pid, crib_err *err) {
  int gate[2];
  if (pipe2(gate, O_CLOEXEC) < 0) return crib_fail(err, errno, "pipe");
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(gate[0]);
    close(gate[1]);
    return crib_fail(err, e, "fork into the PID namespace");
  }
  if (pid > 0) {
    close(gate[0]);
    crib_err e;
    if (crib_sync_send(sync_fd, CRIB_SYNC_PID, (int)pid, -1, &e) < 0 ||
        crib_write_all(gate[1], &pid, sizeof pid) < 0) {
      kill(pid, SIGKILL);
      _exit(1);
    }
    _exit(0);
  }
  close(gate[1]);
  ssize_t n;
  do n = read(gate[0], runtime_pid, sizeof *runtime_pid);
  while (n < 0 && errno == EINTR);
  close(gate[0]);
  /* Short: the parent died before reporting us; the runtime gives up on its own. */
  if (n != (ssize_t)sizeof *runtime_pid) _exit(1);
  return 0;
}

int crib_check_reported_pid(pid_t pid, pid_t setup, crib_err *err) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  crib_err e;
  if (pid <= 0 || crib_read_file(path, buf, sizeof buf, NULL, &e) < 0)
    return crib_fail(err, ESRCH, "container process %d (as reported) does not exist", (int)pid);
  /* comm may hold spaces and parentheses: the fields start after the last ')'. */
  char *p = strrchr(buf, ')');
  int ppid = -1;
  if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
    return crib_fail(err, 0, "`%s`: cannot parse", path);
  if (ppid != (int)setup && ppid != (int)getpid())
    return crib_fail(err, EPERM, "container process %d (as reported) is not the one the setup "
                     "process %d forked (its parent is %d)", (int)pid, (int)setup, ppid);
  return 0;
}
