/* `kill [--all] ID [SIGNAL]`: SIGTERM by default; --all signals every process in the cgroup. */
#include <errno.h>
#include <signal.h>

#include "cli.h"
#include "container.h"
#include "signals.h"

int crib_cmd_kill(const crib_globals *g, int argc, char **argv, crib_err *err) {
  bool all = false;
  const crib_opt opts[] = {{"all", 'a', CRIB_OPT_FLAG, &all}};
  int i = 0;
  if (crib_parse_flags(argc, argv, &i, opts, 1, err) < 0) return -1;
  if (i >= argc) return crib_fail(err, 0, "missing container id");
  const char *id = argv[i++];
  int sig = SIGTERM;
  if (i < argc && crib_signal_parse(argv[i++], &sig, err) < 0) return -1;
  /* runc also accepts --all after the id. */
  if (i < argc && crib_parse_flags(argc, argv, &i, opts, 1, err) < 0) return -1;
  if (i < argc) return crib_fail(err, 0, "unexpected argument `%s`", argv[i]);
  crib_state st;
  if (crib_state_read(g->root, id, &st, err) < 0) return -1;
  int rc = -1;
  crib_status s = crib_state_status(&st);
  if (s == CRIB_STOPPED && !all) {
    crib_fail(err, ESRCH, "container `%s` is not running", id);
    goto out;
  }
  if (all) {
    crib_cgroup cg;
    if (crib_container_cgroup(&st, &cg, err) < 0 || crib_cg_kill_all(&cg, sig, err) < 0) goto out;
  } else if (kill(st.pid, sig) < 0) {
    crib_fail(err, errno, "kill container `%s` (pid %d)", id, (int)st.pid);
    goto out;
  }
  rc = 0;
out:
  crib_state_free(&st);
  return rc;
}
