/* See criu.h. */
#include "criu.h"
#include "spec.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

bool crib_criu_is_bind(json_t *m) {
  const char *type = crib_json_str(m, "type");
  if (type && strcmp(type, "bind") == 0) return true;
  json_t *opts = json_object_get(m, "options"), *o;
  size_t i;
  json_array_foreach(opts, i, o) {
    const char *s = json_string_value(o);
    if (s && (strcmp(s, "bind") == 0 || strcmp(s, "rbind") == 0)) return true;
  }
  return false;
}

void crib_criu_arg(crib_criu_argv *a, const char *arg) {
  if (a->n >= CRIB_CRIU_MAX_ARGS) {
    a->overflow = true;
    return;
  }
  char *copy = strdup(arg);
  if (copy == NULL) {
    a->overflow = true;
    return;
  }
  a->argv[a->n++] = copy;
  a->argv[a->n] = NULL;
}

void crib_criu_argf(crib_criu_argv *a, const char *fmt, ...) {
  char buf[8192];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof buf) {
    a->overflow = true;
    return;
  }
  crib_criu_arg(a, buf);
}

void crib_criu_argv_free(crib_criu_argv *a) {
  for (size_t i = 0; i < a->n; i++) free(a->argv[i]);
  a->n = 0;
}

/* Why criu failed, from its log: the first line that says "Error" (criu's first error is its
 * cause: "vdso: Unexpected rt vDSO area bounds" before "Could not initialize kernel features
 * detection.") and, when another follows, the last one too. Without any, its last line: the log
 * is long (-v4) and ends in "Dumping FAILED." after the line that says why. */
static void log_errors(const char *log_path, char *out, size_t cap) {
  out[0] = '\0';
  FILE *f = fopen(log_path, "re");
  if (f == NULL) {
    snprintf(out, cap, "(no log: open `%s`: %s)", log_path, strerror(errno));
    return;
  }
  char line[512], last[512] = "", first_err[512] = "", last_err[512] = "";
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    if (line[0] == '\0') continue;
    snprintf(last, sizeof last, "%s", line);
    /* "Dumping FAILED." / "Restoring FAILED." repeat that it failed, not why. */
    if (!strstr(line, "Error") || strstr(line, "FAILED.")) continue;
    if (first_err[0] == '\0') snprintf(first_err, sizeof first_err, "%s", line);
    else snprintf(last_err, sizeof last_err, "%s", line);
  }
  bool bad = ferror(f);
  fclose(f);
  if (bad) snprintf(out, cap, "(read `%s` failed)", log_path);
  else if (first_err[0] && last_err[0]) snprintf(out, cap, "%s ... %s", first_err, last_err);
  else snprintf(out, cap, "%s", first_err[0] ? first_err : last[0] ? last : "(the log is empty)");
}

int crib_criu_run(const char *criu_path, crib_criu_argv *a, const char *verb, const char *log_path,
                  const crib_cgroup *cg, const int *keep, size_t nkeep, crib_err *err) {
  if (a->overflow) return crib_fail(err, E2BIG, "criu %s: too many or too long arguments", verb);
  const char *bin = criu_path ? criu_path : "criu";
  free(a->argv[0]);
  a->argv[0] = strdup(bin);
  if (a->argv[0] == NULL) return crib_fail(err, ENOMEM, "criu %s: strdup", verb);
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0) return crib_fail(err, errno, "pipe");
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(ready[0]);
    close(ready[1]);
    return crib_fail(err, e, "fork for criu %s", verb);
  }
  if (pid == 0) {
    close(ready[0]);
    crib_err ce = {0};
    /* Our death (the daemon's timeout kills us) must not leave criu running on. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent) _exit(127);
    for (size_t i = 0; i < nkeep; i++) {
      int fl = fcntl(keep[i], F_GETFD);
      if (fl < 0 || fcntl(keep[i], F_SETFD, fl & ~FD_CLOEXEC) < 0) {
        crib_fail(&ce, errno, "clear close-on-exec of fd %d for criu", keep[i]);
        goto child_fail;
      }
    }
    if (cg) {
      int r = crib_cg_enter_self(cg, &ce);
      if (r < 0 || (r == 1 && crib_cg_enter(cg, getpid(), &ce) < 0)) goto child_fail;
    }
    execvp(bin, a->argv);
    crib_fail(&ce, errno, "exec `%s`", bin);
  child_fail:
    if (write(ready[1], ce.msg, strlen(ce.msg)) < 0) _exit(126);
    _exit(127);
  }
  close(ready[1]);
  char child_msg[sizeof err->msg];
  ssize_t n;
  do n = read(ready[0], child_msg, sizeof child_msg - 1);
  while (n < 0 && errno == EINTR);
  close(ready[0]);
  int status;
  pid_t w;
  do w = waitpid(pid, &status, 0);
  while (w < 0 && errno == EINTR);
  if (w < 0) return crib_fail(err, errno, "waitpid criu %s (pid %d)", verb, (int)pid);
  if (n > 0) {
    child_msg[n] = '\0';
    return crib_fail(err, 0, "criu %s: %s", verb, child_msg);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  char why[1100];
  log_errors(log_path, why, sizeof why);
  if (WIFSIGNALED(status))
    return crib_fail(err, 0, "criu %s was killed by signal %d: %s; log: %s", verb, WTERMSIG(status),
                     why, log_path);
  return crib_fail(err, 0, "criu %s failed (exit %d): %s; log: %s", verb, WEXITSTATUS(status), why,
                   log_path);
}
