/* Ending a cgroup: signalling every process in it and removing its directories. */
#include "cgroup-internal.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long a signal to every process waits for the cgroup to freeze before it signals them
 * unfrozen (a task stuck in the kernel can hold a freeze off). */
#define KILL_FREEZE_TIMEOUT_MS 2000

static int cmp_pid(const void *a, const void *b) {
  pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
  return (x > y) - (x < y);
}

/* Signal each pid not signalled already (a non-fatal signal reaches each process once); done
 * is kept sorted for the lookups. *fresh tells whether any pid was new. */
static int signal_pids(const pid_t *pids, size_t n, int sig, pid_t **done, size_t *ndone,
                       bool *fresh, crib_err *err) {
  *fresh = false;
  if (n == 0) return 0;
  pid_t *grown = realloc(*done, (*ndone + n) * sizeof *grown);
  if (grown == NULL) return crib_fail(err, ENOMEM, "signal cgroup processes");
  *done = grown;
  size_t known = *ndone;
  for (size_t i = 0; i < n; i++) {
    if (known > 0 && bsearch(&pids[i], *done, known, sizeof **done, cmp_pid) != NULL) continue;
    (*done)[(*ndone)++] = pids[i];
    *fresh = true;
    if (kill(pids[i], sig) < 0 && errno != ESRCH)
      return crib_fail(err, errno, "kill %d with signal %d", (int)pids[i], sig);
  }
  qsort(*done, *ndone, sizeof **done, cmp_pid);
  return 0;
}

int crib_cg_kill_all(const crib_cgroup *cg, int sig, crib_err *err) {
  char dir[PATH_MAX];
  /* cgroup.kill (Linux 5.14) kills the whole subtree atomically, forks in flight included. */
  if (cg->mode == CRIB_CG_V2 && sig == SIGKILL) {
    if (!CRIB_CGI_FMT(dir, "%s%s", cg->root, cg->path))
      return crib_fail(err, ENAMETOOLONG, "cgroup path %s%s", cg->root, cg->path);
    if (crib_cgi_exists(dir, "cgroup.kill")) {
      if (crib_cgi_write(dir, "cgroup.kill", "1", err) < 0)
        return crib_err_wrap(err, "kill cgroup %s", cg->path);
      return 0;
    }
  }
  /* Frozen, nothing forks or exits while its pids are read and signalled (a pid read from
   * cgroup.procs could otherwise be gone, or reused, by the time it is signalled). Without a
   * freezer, or when freezing did not complete in time, the pids are read until none is new. */
  bool was_frozen;
  crib_err freeze_err;
  bool frozen = crib_cg_freeze(cg, KILL_FREEZE_TIMEOUT_MS, &was_frozen, &freeze_err) == 0;
  pid_t *done = NULL;
  size_t ndone = 0;
  int rc = 0;
  /* Frozen: one pass sees everything. Not frozen: repeat until a pass finds no new process,
   * which catches children forked while the previous pass ran. */
  for (int pass = 0; pass < (frozen ? 1 : 100); pass++) {
    pid_t *pids;
    size_t n;
    bool fresh;
    if (crib_cg_pids(cg, &pids, &n, err) < 0) {
      /* A cgroup that is gone has no process left to signal (delete --force after a crash). */
      rc = err->errnum == ENOENT ? 0 : -1;
      break;
    }
    rc = signal_pids(pids, n, sig, &done, &ndone, &fresh, err);
    free(pids);
    if (rc < 0 || !fresh) break;
  }
  free(done);
  /* Thaw, unless the cgroup was paused before and the signal can wait for the resume: a
   * frozen process does not act on SIGKILL until thawed, so SIGKILL always thaws. */
  if (frozen && (!was_frozen || sig == SIGKILL)) {
    crib_err thaw_err;
    if (crib_cg_thaw(cg, &thaw_err) < 0 && rc == 0) {
      *err = thaw_err;
      rc = -1;
    }
  }
  if (rc < 0) crib_err_wrap(err, "signal %d to cgroup %s", sig, cg->path);
  return rc;
}

/* rmdir of dir after its child cgroups, deepest first (a cgroup with children is busy). */
static int rmdir_tree(const char *dir, int depth, crib_err *err) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    if (errno == ENOENT) return 0;
    return crib_fail(err, errno, "opendir %s", dir);
  }
  struct dirent *de;
  int rc = 0;
  while (rc == 0 && (de = readdir(d)) != NULL) {
    if (de->d_type != DT_DIR || de->d_name[0] == '.' || depth > 32) continue;
    char child[PATH_MAX];
    if (!CRIB_CGI_FMT(child, "%s/%s", dir, de->d_name))
      rc = crib_fail(err, ENAMETOOLONG, "rmdir %s/%s", dir, de->d_name);
    else
      rc = rmdir_tree(child, depth + 1, err);
  }
  closedir(d);
  if (rc < 0) return -1;
  if (rmdir(dir) < 0 && errno != ENOENT) return crib_fail(err, errno, "rmdir %s", dir);
  return 0;
}

/* Killed processes leave the cgroup only once the kernel has finished their exit: EBUSY for a
 * moment after kill_all is expected, so retry for up to a second. */
static int destroy_one(const char *dir, void *arg, crib_err *err) {
  (void)arg;
  long long deadline = crib_cgi_now_ms() + 1000;
  for (;;) {
    if (rmdir_tree(dir, 0, err) == 0) return 0;
    if (err->errnum != EBUSY || crib_cgi_now_ms() > deadline) return -1;
    crib_cgi_sleep_ms(10);
  }
}

int crib_cg_destroy(const crib_cgroup *cg, crib_err *err) {
  if (cg->path[0] != '/' || cg->path[1] == '\0')
    return crib_fail(err, 0, "cgroup path \"%s\": refusing to remove it", cg->path);
  if (crib_cgi_for_each_dir(cg, destroy_one, NULL, err) < 0)
    return crib_err_wrap(err, "destroy cgroup %s", cg->path);
  return 0;
}
