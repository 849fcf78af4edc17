/* reset_signals_for_exec (crib-signal-reset.h). */
#include "crib-signal-reset.h"

#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's sigaction; all zeroes is SIG_DFL with no flags and an empty mask on every layout. */
struct kernel_sigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  uint64_t mask;
};

/* Ignored dispositions and the blocked mask survive execve: what a helper execs (the runtime, and
 * through it the container's processes) must start with defaults, not with the helper's SIGPIPE
 * ignore or SIGCHLD block. Through the raw syscall: glibc's signal() and sigaction() refuse its
 * two internal signals (32 and 33), and a helper the daemon started with posix_spawn has those
 * ignored (glibc's spawn ignores them in its child), which an exec would hand on to the
 * container. */
int reset_signals_for_exec(void) {
  /* Dispositions first, then the mask: a vfork child (the monitor's spawn_runtime) must not take
   * a signal while a handler it shares with its parent is still set. */
  struct kernel_sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  for (int s = 1; s <= 64; s++) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    if (syscall(SYS_rt_sigaction, s, &dfl, NULL, sizeof dfl.mask) < 0) return -1;
  }
  sigset_t none;
  sigemptyset(&none);
  return sigprocmask(SIG_SETMASK, &none, NULL);
}
