#include "signals.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
  const char *name;
  int sig;
} table[] = {
    {"HUP", SIGHUP},     {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP},   {"ABRT", SIGABRT},     {"IOT", SIGIOT},     {"BUS", SIGBUS},
    {"FPE", SIGFPE},     {"KILL", SIGKILL},     {"USR1", SIGUSR1},   {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},   {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},   {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},   {"CONT", SIGCONT},   {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU},   {"URG", SIGURG},
    {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},     {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH}, {"IO", SIGIO},         {"POLL", SIGPOLL},   {"PWR", SIGPWR},
    {"SYS", SIGSYS},
};

int crib_signal_parse(const char *s, int *sig, crib_err *err) {
  char *end;
  long n = strtol(s, &end, 10);
  if (*s && *end == '\0') {
    if (n <= 0 || n > SIGRTMAX) return crib_fail(err, 0, "signal `%s` out of range", s);
    *sig = (int)n;
    return 0;
  }
  const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (strcasecmp(table[i].name, name) == 0) {
      *sig = table[i].sig;
      return 0;
    }
  if (strncasecmp(name, "RTMIN", 5) == 0 || strncasecmp(name, "RTMAX", 5) == 0) {
    int base = strncasecmp(name, "RTMIN", 5) == 0 ? SIGRTMIN : SIGRTMAX;
    long off = name[5] ? strtol(name + 5, &end, 10) : 0;
    if (!name[5] || *end == '\0') {
      *sig = base + (int)off;
      if (*sig >= SIGRTMIN && *sig <= SIGRTMAX) return 0;
    }
  }
  return crib_fail(err, 0, "unknown signal `%s`", s);
}
