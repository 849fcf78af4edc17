/* Test helper: `start` a created container, then stop it the moment start has returned, as the
 * daemon's StopContainer would, with no daemon in between to slow it down:
 *
 *   start-then-kill RUNTIME ROOT ID PID SIGNAL DELAY_US
 *
 * Runs RUNTIME --root ROOT start ID and waits for it; right after, reads the /proc/PID/exe link
 * (what the container's process runs at that moment: the kernel switches it before it closes
 * the close-on-exec fds, so a start that waits for that close always sees the new program),
 * sleeps DELAY_US microseconds, then runs RUNTIME --root ROOT kill ID SIGNAL.
 * Prints "start <code> exe <last component of the link> kill <code>" on stdout; the runtime's
 * stderr passes through. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* RUNTIME --root ROOT VERB ID [ARG]; its exit code (128+signal when killed), 255 on failure. */
static int run(const char *runtime, const char *root, const char *verb, const char *id, const char *arg) {
  pid_t p = fork();
  if (p < 0) return 255;
  if (p == 0) {
    execlp(runtime, runtime, "--root", root, verb, id, arg, (char *)NULL);
    perror("start-then-kill: exec");
    _exit(127);
  }
  int status;
  while (waitpid(p, &status, 0) < 0)
    if (errno != EINTR) return 255;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: start-then-kill RUNTIME ROOT ID PID SIGNAL DELAY_US\n");
    return 2;
  }
  long delay_us = atol(argv[6]);
  pid_t target = (pid_t)atoi(argv[4]);
  int started = run(argv[1], argv[2], "start", argv[3], NULL);
  char path[64], exe[4096] = "?";
  snprintf(path, sizeof path, "/proc/%d/exe", (int)target);
  ssize_t n = readlink(path, exe, sizeof exe - 1);
  exe[n > 0 ? n : 1] = '\0';
  const char *slash = strrchr(exe, '/');
  struct timespec delay = {.tv_sec = delay_us / 1000000, .tv_nsec = (delay_us % 1000000) * 1000};
  while (nanosleep(&delay, &delay) < 0 && errno == EINTR) {
  }
  int killed = run(argv[1], argv[2], "kill", argv[3], argv[5]);
  printf("start %d exe %s kill %d\n", started, slash ? slash + 1 : exe, killed);
  return 0;
}
