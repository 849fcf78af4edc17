/* Test driver for spawn_runtime (native/monitor/spawn.c), the monitor's one way of starting the
 * runtime:
 *
 *   spawn-driver PROGRAM [ARG...]   runs PROGRAM through spawn_runtime with this driver's stdio,
 *                                   after giving itself what a monitor has when it spawns: a
 *                                   handler (SIGUSR1), an ignored signal (SIGPIPE), blocked ones
 *                                   (SIGCHLD, SIGTERM) and a descriptor without FD_CLOEXEC (fd 7)
 *
 * Prints "mask before <hex>", "status <n>" (PROGRAM's exit code) and "mask after <hex>", the
 * driver's own SigBlk around the spawn, and "handler kept" when SIGUSR1's handler is still its
 * own. Linked with -Wl,--wrap=fork: a fork aborts the driver, since spawn_runtime vforks. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "monitor.h"

pid_t __real_fork(void);
pid_t __wrap_fork(void);
pid_t __wrap_fork(void) {
  fprintf(stderr, "spawn-driver: fork called\n");
  abort();
}

static void on_usr1(int sig) { (void)sig; }

/* Prints "mask <when> <SigBlk from /proc/self/status>". */
static void print_mask(const char *when) {
  char line[256], hex[64];
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) {
    perror("spawn-driver: /proc/self/status");
    exit(2);
  }
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "SigBlk: %63s", hex) == 1) printf("mask %s %s\n", when, hex);
  fclose(f);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: spawn-driver PROGRAM [ARG...]\n");
    return 2;
  }
  struct sigaction sa = {.sa_handler = on_usr1};
  sigemptyset(&sa.sa_mask);
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGCHLD);
  sigaddset(&blocked, SIGTERM);
  int keep = open("/dev/null", O_RDONLY);
  if (sigaction(SIGUSR1, &sa, NULL) < 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR ||
      sigprocmask(SIG_BLOCK, &blocked, NULL) < 0 || keep < 0 || dup2(keep, 7) < 0) {
    perror("spawn-driver: set up");
    return 2;
  }
  print_mask("before");
  fflush(stdout);
  crib_err err;
  pid_t pid = spawn_runtime(argv + 1, 0, 1, 2, &err);
  if (pid < 0) {
    fprintf(stderr, "spawn-driver: %s\n", err.msg);
    return 1;
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) {
      perror("spawn-driver: waitpid");
      return 2;
    }
  printf("status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  print_mask("after");
  struct sigaction now;
  if (sigaction(SIGUSR1, NULL, &now) == 0 && now.sa_handler == on_usr1) printf("handler kept\n");
  return 0;
}
