/* start and delete: the transitions after create (see the diagram in state.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "container.h"
#include "exec-fifo.h"
#include "files.h"
#include "hooks.h"
#include "spec.h"

int crib_container_cgroup(const crib_state *st, crib_cgroup *cg, crib_err *err) {
  if (crib_cg_detect(cg, err) < 0) return -1;
  if (!CRIB_FMT(cg->path, "%s", st->cgroup)) return crib_fail(err, ENAMETOOLONG, "cgroup path");
  return 0;
}

int crib_container_wait_gone(const crib_state *st, int timeout_ms) {
  struct timespec step = {.tv_sec = 0, .tv_nsec = 2 * 1000 * 1000};
  for (int waited = 0;; waited += 2) {
    if (crib_state_status(st) == CRIB_STOPPED) return 0;
    if (waited >= timeout_ms) return -1;
    nanosleep(&step, NULL);
  }
}

/* poststart and poststop: a failure is a warning, the lifecycle goes on (OCI). The hooks come
 * from the bundle's config.json; a bundle already gone has none to run. */
static void run_warn_hooks(const crib_state *st, const char *stage, const char *status) {
  crib_err e;
  json_t *spec = crib_spec_load(st->bundle, &e);
  if (!spec) return;
  if (crib_hooks_has(spec, stage)) {
    json_t *state = crib_hook_state(st->id, st->bundle, st->pid, st->annotations, status);
    if (crib_hooks_run(spec, stage, state, &e) < 0) crib_err_print("crib-runtime: warning", &e);
    json_decref(state);
  }
  json_decref(spec);
}

/* One start at a time per container: a second one would find the init released and wait for a
 * report the first one takes. */
static int lock_for_start(const crib_state *st, crib_err *err) {
  int fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return crib_fail(err, errno, "open `%s`", st->dir);
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    int e = errno;
    close(fd);
    if (e == EWOULDBLOCK) return crib_fail(err, 0, "container `%s` is being started by another call", st->id);
    return crib_fail(err, e, "flock `%s`", st->dir);
  }
  return fd;
}

int crib_container_start(const char *root, const char *id, crib_err *err) {
  crib_state st;
  if (crib_state_read(root, id, &st, err) < 0) return -1;
  int rc = -1, lock = lock_for_start(&st, err);
  if (lock < 0) goto out;
  crib_status s = crib_state_status(&st);
  if (s != CRIB_CREATED) {
    crib_fail(err, 0, "container `%s` is %s: only a created container can be started", id,
              crib_status_name(s));
    goto out;
  }
  if (crib_exec_release(&st, err) < 0) goto out;
  rc = 0;
  run_warn_hooks(&st, "poststart", "running");
out:
  if (lock >= 0) close(lock);
  crib_state_free(&st);
  return rc;
}

int crib_container_delete(const char *root, const char *id, bool force, crib_err *err) {
  crib_state st;
  if (crib_state_read(root, id, &st, err) < 0) {
    /* A create killed before it wrote state.json leaves a bare dir: --force clears it. */
    char dir[PATH_MAX];
    struct stat sb;
    if (!force || err->errnum != ENOENT || crib_state_path(root, id, dir, sizeof dir, err) < 0 ||
        stat(dir, &sb) < 0)
      return -1;
    return crib_rm_dir(dir, err);
  }
  int rc = -1;
  crib_status s = crib_state_status(&st);
  if (s == CRIB_RUNNING && !force) {
    crib_fail(err, 0, "container `%s` is running: stop it first or use --force", id);
    goto out;
  }
  crib_cgroup cg;
  if (crib_container_cgroup(&st, &cg, err) < 0) goto out;
  if (s != CRIB_STOPPED) {
    /* A created container has nothing to lose; a running one is only here with --force. */
    kill(st.pid, SIGKILL);
    if (crib_cg_kill_all(&cg, SIGKILL, err) < 0) goto out;
    if (crib_container_wait_gone(&st, 10000) < 0) {
      crib_fail(err, EBUSY, "container `%s`: init %d did not die after SIGKILL", id, (int)st.pid);
      goto out;
    }
  } else {
    /* The init is gone, but with a shared pid namespace its children may remain. Killing
     * freezes the cgroup first: only pay for that when someone is left. */
    pid_t *pids = NULL;
    size_t n = 0;
    crib_err ignored;
    if (crib_cg_pids(&cg, &pids, &n, &ignored) < 0 || n > 0) crib_cg_kill_all(&cg, SIGKILL, &ignored);
    free(pids);
  }
  if (crib_cg_destroy(&cg, err) < 0) goto out;
  if (crib_rm_dir(st.dir, err) < 0) goto out;
  rc = 0;
  run_warn_hooks(&st, "poststop", "stopped");
out:
  crib_state_free(&st);
  return rc;
}
