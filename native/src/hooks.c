#include "hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.h"
#include "process.h"
#include "spec.h"

bool crib_hooks_has(json_t *spec, const char *stage) {
  return json_array_size(json_object_get(json_object_get(spec, "hooks"), stage)) > 0;
}

/* Wait for pid, at most timeout_s seconds (0: no limit); kills it on timeout. */
static int wait_hook(pid_t pid, long long timeout_s, int *status, bool *timed_out) {
  *timed_out = false;
  if (timeout_s > 0) {
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pfd >= 0) {
      struct pollfd p = {.fd = pfd, .events = POLLIN};
      int n;
      do n = poll(&p, 1, (int)(timeout_s * 1000));
      while (n < 0 && errno == EINTR);
      close(pfd);
      if (n == 0) {
        kill(pid, SIGKILL);
        *timed_out = true;
      }
    }
  }
  while (waitpid(pid, status, 0) < 0)
    if (errno != EINTR) return -1;
  return 0;
}

static int run_one(json_t *hook, const char *stage, size_t i, const char *state_text, crib_err *err) {
  const char *path = crib_json_str(hook, "path");
  if (!path || path[0] != '/')
    return crib_fail(err, 0, "hooks.%s[%zu]: path must be absolute", stage, i);
  json_t *args = json_object_get(hook, "args");
  json_t *env = json_object_get(hook, "env");
  char **argv = json_array_size(args) ? crib_process_strv(args) : NULL;
  char **envp = crib_process_strv(json_is_array(env) ? env : NULL);
  char *fallback[] = {(char *)path, NULL};
  int in[2];
  if (pipe2(in, O_CLOEXEC) < 0) {
    free(argv);
    free(envp);
    return crib_fail(err, errno, "hooks.%s[%zu]: pipe", stage, i);
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(in[0]);
    close(in[1]);
    free(argv);
    free(envp);
    return crib_fail(err, e, "hooks.%s[%zu]: fork", stage, i);
  }
  if (pid == 0) {
    if (dup2(in[0], 0) < 0) _exit(126);
    signal(SIGPIPE, SIG_DFL);
    execve(path, argv ? argv : fallback, envp);
    fprintf(stderr, "crib-runtime: hook `%s`: %s\n", path, strerror(errno));
    _exit(127);
  }
  close(in[0]);
  free(argv);
  free(envp);
  /* A hook that does not read its stdin is fine: ignore EPIPE. */
  void (*old)(int) = signal(SIGPIPE, SIG_IGN);
  size_t len = strlen(state_text), off = 0;
  while (off < len) {
    ssize_t n = write(in[1], state_text + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += (size_t)n;
  }
  close(in[1]);
  signal(SIGPIPE, old);
  int status;
  bool timed_out;
  if (wait_hook(pid, crib_json_int(hook, "timeout", 0), &status, &timed_out) < 0)
    return crib_fail(err, errno, "hooks.%s[%zu] `%s`: wait", stage, i, path);
  if (timed_out)
    return crib_fail(err, ETIMEDOUT, "hooks.%s[%zu] `%s`: timed out after %llds", stage, i, path,
                     crib_json_int(hook, "timeout", 0));
  if (WIFSIGNALED(status))
    return crib_fail(err, 0, "hooks.%s[%zu] `%s`: killed by signal %d", stage, i, path, WTERMSIG(status));
  if (WEXITSTATUS(status) != 0)
    return crib_fail(err, 0, "hooks.%s[%zu] `%s`: exited with status %d", stage, i, path,
                     WEXITSTATUS(status));
  return 0;
}

int crib_hooks_run(json_t *spec, const char *stage, json_t *state, crib_err *err) {
  json_t *list = json_object_get(json_object_get(spec, "hooks"), stage);
  if (json_array_size(list) == 0) return 0;
  char *text = json_dumps(state, JSON_COMPACT);
  if (!text) return crib_fail(err, ENOMEM, "hooks: state json");
  int rc = 0;
  size_t i;
  json_t *hook;
  json_array_foreach(list, i, hook) {
    if ((rc = run_one(hook, stage, i, text, err)) < 0) break;
  }
  free(text);
  return rc;
}
