/* `create` and `run` (create + start + wait, then delete unless --keep). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "container.h"

typedef struct create_flags {
  crib_create_opts o;
  bool detach, keep, no_new_keyring;
  const char *preserve_fds;
} create_flags;

static int parse(const crib_globals *g, int argc, char **argv, create_flags *f, crib_err *err) {
  memset(f, 0, sizeof *f);
  f->o.root = g->root;
  const crib_opt opts[] = {
      {"bundle", 'b', CRIB_OPT_STRING, &f->o.bundle},
      {"pid-file", 0, CRIB_OPT_STRING, &f->o.pid_file},
      {"console-socket", 0, CRIB_OPT_STRING, &f->o.console_socket},
      {"no-pivot", 0, CRIB_OPT_FLAG, &f->o.no_pivot},
      {"no-new-keyring", 0, CRIB_OPT_FLAG, &f->no_new_keyring},
      {"preserve-fds", 0, CRIB_OPT_STRING, &f->preserve_fds},
      {"detach", 'd', CRIB_OPT_FLAG, &f->detach},
      {"keep", 0, CRIB_OPT_FLAG, &f->keep},
  };
  int i = 0;
  if (crib_parse_flags(argc, argv, &i, opts, sizeof opts / sizeof opts[0], err) < 0) return -1;
  if (f->preserve_fds) {
    char *end;
    long n = strtol(f->preserve_fds, &end, 10);
    if (*end || n < 0 || n > 65536) return crib_fail(err, 0, "--preserve-fds `%s`: expected a count", f->preserve_fds);
    f->o.preserve_fds = (int)n;
  }
  return crib_take_id(argc, argv, i, &f->o.id, err);
}

int crib_cmd_create(const crib_globals *g, int argc, char **argv, crib_err *err) {
  create_flags f;
  if (parse(g, argc, argv, &f, err) < 0) return -1;
  crib_state st;
  int rc = crib_container_create(&f.o, &st, err);
  crib_state_free(&st);
  return rc < 0 ? -1 : 0;
}

static volatile sig_atomic_t forward_to;

static void forward(int sig) {
  if (forward_to > 0) kill(forward_to, sig);
}

int crib_cmd_run(const crib_globals *g, int argc, char **argv, crib_err *err) {
  create_flags f;
  if (parse(g, argc, argv, &f, err) < 0) return -1;
  /* Whatever the namespace layout, the init ends up our child to wait for. */
  if (!f.detach && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
    return crib_fail(err, errno, "prctl PR_SET_CHILD_SUBREAPER");
  crib_state st;
  if (crib_container_create(&f.o, &st, err) < 0) {
    crib_state_free(&st);
    return -1;
  }
  pid_t init = st.pid;
  crib_state_free(&st);
  if (crib_container_start(g->root, f.o.id, err) < 0) {
    crib_err e;
    crib_container_delete(g->root, f.o.id, true, &e);
    return -1;
  }
  if (f.detach) return 0;
  forward_to = init;
  struct sigaction sa = {.sa_handler = forward};
  sigemptyset(&sa.sa_mask);
  int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
  for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++) sigaction(sigs[k], &sa, NULL);
  int status = 0, code = 0;
  for (;;) {
    pid_t p = waitpid(-1, &status, 0);
    if (p < 0) {
      if (errno == EINTR) continue;
      return crib_fail(err, errno, "wait for container `%s`", f.o.id);
    }
    if (p == init) break;
  }
  code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (!f.keep && crib_container_delete(g->root, f.o.id, true, err) < 0) return -1;
  return code;
}
