/* `pause ID` and `resume ID`: runc's verbs. pause freezes every process of the container's
 * cgroup (the cgroup freezer: the processes cannot tell), resume thaws them. The daemon pauses a
 * container while it takes a checkpoint, so that the rootfs diff it writes after criu's dump
 * shows the files as they were at the dump. `state` keeps saying "running": CRI has no paused
 * state, and a paused container is still running to it. */
#include <errno.h>

#include "cli.h"
#include "container.h"

/* How long pause waits for every process to freeze: a task stuck in the kernel (D state, a
 * vfork parent) can hold a freeze off. */
#define PAUSE_TIMEOUT_MS 5000

/* The verbs' one argument, the container's id (a flag given is refused, not taken for the id),
 * and its state. */
static int read_container(const crib_globals *g, int argc, char **argv, crib_state *st,
                          crib_err *err) {
  int i = 0;
  const char *id;
  if (crib_parse_flags(argc, argv, &i, NULL, 0, err) < 0) return -1;
  if (crib_take_id(argc, argv, i, &id, err) < 0) return -1;
  return crib_state_read(g->root, id, st, err);
}

int crib_cmd_pause(const crib_globals *g, int argc, char **argv, crib_err *err) {
  crib_state st;
  if (read_container(g, argc, argv, &st, err) < 0) return -1;
  int rc = -1;
  crib_status s = crib_state_status(&st);
  if (s != CRIB_RUNNING) {
    crib_fail(err, 0, "pause: container `%s` is %s, not running", st.id, crib_status_name(s));
    goto out;
  }
  crib_cgroup cg;
  bool was_frozen;
  if (crib_container_cgroup(&st, &cg, err) < 0 ||
      crib_cg_freeze(&cg, PAUSE_TIMEOUT_MS, &was_frozen, err) < 0) {
    crib_err_wrap(err, "pause `%s`", st.id);
    goto out;
  }
  rc = 0;
out:
  crib_state_free(&st);
  return rc;
}

/* Thaws whatever froze: a container that is not paused, or no longer runs, has nothing to thaw
 * (the daemon resumes after an interrupted checkpoint without knowing how far it got). */
int crib_cmd_resume(const crib_globals *g, int argc, char **argv, crib_err *err) {
  crib_state st;
  if (read_container(g, argc, argv, &st, err) < 0) return -1;
  int rc = -1;
  crib_cgroup cg;
  if (crib_container_cgroup(&st, &cg, err) < 0) goto out;
  if (crib_cg_thaw(&cg, err) < 0) {
    /* A stopped container's cgroup may be gone already: nothing of it is frozen. */
    if (crib_state_status(&st) == CRIB_STOPPED && err->errnum == ENOENT) rc = 0;
    else crib_err_wrap(err, "resume `%s`", st.id);
    goto out;
  }
  rc = 0;
out:
  crib_state_free(&st);
  return rc;
}
