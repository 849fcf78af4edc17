/* Starting the OCI runtime from the monitor. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
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

/* The vfork child: it runs on the monitor's memory and stack until execv, so it only makes
 * syscalls on its own signal state and descriptors, and writes nothing the parent reads. noinline
 * keeps its locals in a frame of its own, below the parent's. */
static __attribute__((noreturn, noinline)) void exec_runtime_child(char *const argv[], int in_fd, int out_fd,
                                                                   int err_fd) {
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

/* vfork, not fork: a fork copies the monitor's page tables for a child that execs at once, and
 * in this project's VM that copy was 0.5 ms of every ExecSync and container create (spawning
 * crib-runtime to its exit, 300 times: fork 1.71 ms, vfork 1.21). Every signal stays blocked from
 * before the vfork until the child has reset its dispositions (reset_signals_for_exec): a handler
 * of the monitor's must never run in the child, on the memory the two share. */
pid_t spawn_runtime(char *const argv[], int in_fd, int out_fd, int err_fd, crib_err *err) {
  /* The raw syscall, so glibc's two internal signals (32, 33), whose handlers it installs at
   * start, are blocked too: its sigprocmask leaves them out. */
  uint64_t all = ~(uint64_t)0, old;
  if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof all) < 0)
    return crib_fail(err, errno, "block signals to spawn `%s`", argv[0]);
  pid_t pid = vfork();
  if (pid == 0) exec_runtime_child(argv, in_fd, out_fd, err_fd);
  int e = errno;
  if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof old) < 0) {
    /* Only EINVAL or EFAULT could fail here, neither possible with these arguments. */
    return crib_fail(err, errno, "restore the signal mask after spawning `%s`", argv[0]);
  }
  if (pid < 0) return crib_fail(err, e, "vfork for `%s`", argv[0]);
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
