/* Freezing a cgroup: every process in it (sub-cgroups included) stopped by the kernel, where it
 * cannot tell it was stopped, until thawed. v1: the freezer hierarchy's freezer.state; v2: the
 * cgroup's own cgroup.freeze, done when cgroup.events says "frozen 1". */
#include "cgroup-internal.h"

#include <errno.h>
#include <string.h>

int crib_cg_freezer_dir(const crib_cgroup *cg, char *dir, size_t cap, crib_err *err) {
  const char *file;
  if (cg->mode == CRIB_CG_V2) {
    if ((size_t)snprintf(dir, cap, "%s%s", cg->root, cg->path) >= cap)
      return crib_fail(err, ENAMETOOLONG, "cgroup path %s%s", cg->root, cg->path);
    file = "cgroup.freeze";
  } else {
    if (crib_cgi_v1_dir(cg, "freezer", dir, cap, err) < 0) return -1;
    file = "freezer.state";
  }
  if (!crib_cgi_exists(dir, file))
    return crib_fail(err, ENOTSUP, "cgroup %s has no freezer (%s/%s is missing)", cg->path, dir,
                     file);
  return 0;
}

/* The freezer's file, what it is written to freeze, and whether the kernel says it is done. */
static const char *freeze_file(const crib_cgroup *cg) {
  return cg->mode == CRIB_CG_V2 ? "cgroup.freeze" : "freezer.state";
}

static const char *frozen_value(const crib_cgroup *cg) {
  return cg->mode == CRIB_CG_V2 ? "1" : "FROZEN";
}

static bool is_frozen(const crib_cgroup *cg, const char *dir) {
  crib_err ignored;
  char state[512];
  if (cg->mode == CRIB_CG_V2) {
    long long frozen = 0;
    return crib_cgi_read(dir, "cgroup.events", state, sizeof state, &ignored) == 0 &&
           crib_cgi_keyed_value(state, "frozen", &frozen) && frozen == 1;
  }
  /* v1 reads FREEZING until every task is frozen. */
  return crib_cgi_read(dir, "freezer.state", state, sizeof state, &ignored) == 0 &&
         strcmp(state, "FROZEN") == 0;
}

int crib_cg_freeze(const crib_cgroup *cg, long timeout_ms, bool *was_frozen, crib_err *err) {
  char dir[PATH_MAX];
  *was_frozen = false;
  if (crib_cg_freezer_dir(cg, dir, sizeof dir, err) < 0) return -1;
  /* What was asked before (a paused container), not whether the kernel has finished. */
  char before[16];
  crib_err ignored;
  if (crib_cgi_read(dir, freeze_file(cg), before, sizeof before, &ignored) == 0)
    *was_frozen = strcmp(before, frozen_value(cg)) == 0;
  if (crib_cgi_write(dir, freeze_file(cg), frozen_value(cg), err) < 0) return -1;
  long long deadline = crib_cgi_now_ms() + timeout_ms;
  /* Freezing usually completes within a millisecond or two: poll fast, then back off. */
  for (long wait = 1;; wait = wait < 10 ? wait * 2 : 10) {
    if (is_frozen(cg, dir)) return 0;
    if (crib_cgi_now_ms() > deadline) break;
    crib_cgi_sleep_ms(wait);
  }
  /* A task stuck in the kernel (D state, vfork) can hold the freeze off: left as it was. */
  if (!*was_frozen && crib_cg_thaw(cg, &ignored) < 0)
    crib_cgi_warn("thawing cgroup %s: %s", cg->path, ignored.msg);
  /* errnum 0: ETIMEDOUT's text ("Connection timed out") would mislead. */
  return crib_fail(err, 0, "freezing cgroup %s: its processes were not all frozen within %ld ms",
                   cg->path, timeout_ms);
}

int crib_cg_thaw(const crib_cgroup *cg, crib_err *err) {
  char dir[PATH_MAX];
  if (crib_cg_freezer_dir(cg, dir, sizeof dir, err) < 0) return -1;
  return crib_cgi_write(dir, freeze_file(cg), cg->mode == CRIB_CG_V2 ? "0" : "THAWED", err);
}
