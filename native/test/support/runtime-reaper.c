/* Test helper: a child subreaper standing in for crib-monitor. Runs CMD (e.g. `crib-runtime
 * create ...`), then reaps every orphan that lands on it (the container init), reporting on
 * fd 3 (kept away from the container's stdio):
 *   cmd <code>          when CMD exits
 *   exit <pid> <code>   for each reaped orphan (code is 128+signal when killed)
 * and exits once it has no children left. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int code_of(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: runtime-reaper CMD [ARGS...]\n");
    return 2;
  }
  if (fcntl(3, F_SETFD, FD_CLOEXEC) < 0) {
    perror("runtime-reaper: fd 3");
    return 2;
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
    perror("runtime-reaper: prctl");
    return 2;
  }
  pid_t cmd = fork();
  if (cmd < 0) return 2;
  if (cmd == 0) {
    execvp(argv[1], argv + 1);
    perror("runtime-reaper: exec");
    _exit(127);
  }
  for (;;) {
    int status;
    pid_t p = waitpid(-1, &status, 0);
    if (p < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p == cmd) dprintf(3, "cmd %d\n", code_of(status));
    else dprintf(3, "exit %d %d\n", (int)p, code_of(status));
  }
  return 0;
}
