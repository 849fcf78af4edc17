/* cgroup support for crib-runtime: one small interface over cgroup v1 (per-controller
 * hierarchies under /sys/fs/cgroup/<controller>) and v2 (one unified hierarchy), chosen at run
 * time. This library knows nothing of containers or the CLI (one-way dependency). */
#ifndef CRIB_CGROUP_H
#define CRIB_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>
#include <jansson.h>

#include "crib-error.h"

typedef enum { CRIB_CG_V1 = 1, CRIB_CG_V2 = 2 } crib_cg_mode;

typedef struct crib_cgroup {
  crib_cg_mode mode;
  /* Mount point: "/sys/fs/cgroup" for v1 (controllers below it), the cgroup2 mount for v2.
   * The environment variable CRIB_CGROUP_ROOT (plus CRIB_CGROUP_MODE=v1|v2) overrides detection,
   * so tests can exercise the v2 code on a private cgroup2 mount or a prepared tree. */
  char root[PATH_MAX];
  /* The cgroup's path relative to each hierarchy root, starting with '/'. */
  char path[PATH_MAX];
} crib_cgroup;

/* Detect the host's layout: v2 when root is a cgroup2 mount, else v1. Fills mode and root. */
int crib_cg_detect(crib_cgroup *cg, crib_err *err);

/* Set cg->path from an OCI linux.cgroupsPath: an absolute/relative path, or the systemd form
 * "slice:prefix:name" (translated to /<slice path>/<prefix>-<name>.scope, the path systemd would
 * use). An empty cgroupsPath means "/crib/<id>". Rejects ".." components.
 * A path is taken as the systemd form when it does not start with '/' and has exactly two ':'.
 * Slices nest by dash ("kubepods-besteffort-pod1.slice" lives under kubepods.slice/
 * kubepods-besteffort.slice/), an empty slice means system.slice, "-.slice" the root, an empty
 * prefix gives "<name>.scope". The root cgroup itself is refused. */
int crib_cg_resolve_path(crib_cgroup *cg, const char *cgroups_path, const char *id, crib_err *err);

/* Create the cgroup: the directory in every mounted v1 controller hierarchy, or the v2 directory
 * with the needed controllers enabled in each ancestor's cgroup.subtree_control. Idempotent.
 * v1: a new cpuset inherits cpuset.cpus/mems from its parent. v2: cpu memory pids io cpuset
 * hugetlb are enabled where cgroup.controllers offers them; one that cannot be enabled is
 * warned about on stderr (limits needing it then fail naming their file). */
int crib_cg_create(const crib_cgroup *cg, crib_err *err);

/* Apply OCI linux.resources (may be NULL: nothing to do): memory limit/swap/reservation, cpu
 * shares/weight, quota/period, cpuset cpus/mems, pids limit, hugepage limits, blkio/io weight.
 * Used at create and by `crib-runtime update`.
 * The whole object is type-checked before anything is written. Also: memory swappiness and
 * disableOOMKiller (v1), cpu burst/idle/realtime (rt: v1 only), blkio leaf weight, weight and
 * throttle devices, network classID/priorities (v1), devices (v1 devices.deny "a" then the rules
 * in order; v2 a BPF cgroup-device program replacing the previous one), unified (v2 only, keys
 * written verbatim last so they win). Write failures read
 * `open/write <file> "<value>": <strerror>`. Values of 0 mean "unset", as in runc. */
int crib_cg_apply(const crib_cgroup *cg, json_t *resources, crib_err *err);

/* The type checks crib_cg_apply makes, without writing anything: for a caller that applies
 * parts of linux.resources at different times and wants every error before the first write. */
int crib_cg_check(json_t *resources, crib_err *err);

/* Move pid into the cgroup (cgroup.procs in every hierarchy). */
int crib_cg_enter(const crib_cgroup *cg, pid_t pid, crib_err *err);

/* The calling (single-threaded) process moves itself into the cgroup, without the ~10 ms that
 * crib_cg_enter costs on v1: "0" is written to `tasks` in every v1 cgroupfs hierarchy under root
 * that holds the cgroup. 0: moved; 1: not possible here (v2, or no such hierarchy), someone must
 * crib_cg_enter it; -1: error. */
int crib_cg_enter_self(const crib_cgroup *cg, crib_err *err);

/* fork() with extra clone flags (e.g. CLONE_NEWPID); on v2 the child is born inside the cgroup
 * (clone3 CLONE_INTO_CGROUP, no migration at all) and *entered is set. Returns like fork:
 * -1 with errno set. */
pid_t crib_cg_fork(const crib_cgroup *cg, unsigned long flags, bool *entered);

/* Send sig to every process in the cgroup (delete --force, kill --all), sub-cgroups included.
 * v2 SIGKILL: cgroup.kill when present. Otherwise the cgroup is frozen (v1 freezer / v2
 * cgroup.freeze), each pid signalled once, then thawed (a cgroup frozen before - paused - stays
 * frozen unless sig is SIGKILL); without a freezer, cgroup.procs is re-read until no new pid
 * shows up. Does not wait for the processes to exit. A cgroup that does not exist is success. */
int crib_cg_kill_all(const crib_cgroup *cg, int sig, crib_err *err);

/* The directory whose freezer file freezes the cgroup: the v2 cgroup's own, or its directory in
 * the v1 freezer hierarchy (criu's --freeze-cgroup). Fails (ENOTSUP) when there is no freezer. */
int crib_cg_freezer_dir(const crib_cgroup *cg, char *dir, size_t cap, crib_err *err);

/* Freeze every process of the cgroup, sub-cgroups included, and wait until the kernel says all
 * are frozen, for at most timeout_ms. *was_frozen: it had been asked to freeze before (paused).
 * Not frozen in time: thawed again unless it was frozen before, and an error saying so. */
int crib_cg_freeze(const crib_cgroup *cg, long timeout_ms, bool *was_frozen, crib_err *err);

/* Thaw the cgroup; one that is not frozen is success. */
int crib_cg_thaw(const crib_cgroup *cg, crib_err *err);

/* Remove the cgroup directories once empty (waits briefly for exiting processes). ENOENT is
 * success. Child cgroups are removed first; EBUSY is retried for about a second. */
int crib_cg_destroy(const crib_cgroup *cg, crib_err *err);

/* OOM kills recorded in this cgroup: memory.events "oom_kill" (v2) or memory.oom_control
 * "oom_kill" (v1). Fails (err->errnum ENOENT) when the memory controller is not there. */
int crib_cg_oom_kills(const crib_cgroup *cg, long *count, crib_err *err);

/* Pids currently in the cgroup (cgroup.procs); *pids is malloc'd, caller frees.
 * Includes the processes of its sub-cgroups. */
int crib_cg_pids(const crib_cgroup *cg, pid_t **pids, size_t *n, crib_err *err);

#endif
