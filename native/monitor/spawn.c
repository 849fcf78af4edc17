/* Starting the OCI runtime from the monitor. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int runtime_argv(char **argv, const char *runtime, const char *runtime_root) {
  int a = 0;
  argv[a++] = (char *)runtime;
  if (runtime_root) {
    argv[a++] = "--root";
    argv[a++] = (char *)runtime_root;
  }
  return a;
}

pid_t spawn_runtime(char *const argv[], int in_fd, int out_fd, int err_fd, crib_err *err) {
  pid_t pid = fork();
  if (pid < 0) return crib_fail(err, errno, "fork for `%s`", argv[0]);
  if (pid == 0) {
    if (reset_signals_for_exec() < 0) {
      dprintf(2, MONITOR_PROG ": resetting signals for `%s`: %s\n", argv[0], strerror(errno));
      _exit(127);
    }
    /* dup2 onto themselves would keep FD_CLOEXEC set; dup to high numbers first. */
    int fds[3] = {fcntl(in_fd, F_DUPFD, 10), fcntl(out_fd, F_DUPFD, 10), fcntl(err_fd, F_DUPFD, 10)};
    for (int i = 0; i < 3; i++)
      if (fds[i] < 0 || dup2(fds[i], i) < 0) _exit(127);
    close_fds_from(3, -1);
    execv(argv[0], argv);
    dprintf(2, MONITOR_PROG ": exec `%s`: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  return pid;
}

int read_pid_file(const char *path, pid_t *pid, crib_err *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return crib_fail(err, errno, "open pid file `%s`", path);
  char buf[32];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  int e = errno;
  close(fd);
  if (n < 0) return crib_fail(err, e, "read pid file `%s`", path);
  buf[n] = '\0';
  char *end;
  long v = strtol(buf, &end, 10);
  if (end == buf || v <= 0) return crib_fail(err, 0, "pid file `%s` holds no pid: `%s`", path, buf);
  *pid = (pid_t)v;
  return 0;
}
