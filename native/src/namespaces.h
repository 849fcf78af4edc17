/* linux.namespaces: which to create, which to join by path, and the user-namespace id maps. */
#ifndef CRIB_NAMESPACES_H
#define CRIB_NAMESPACES_H

#include <jansson.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/types.h>

#include "crib-error.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080 /* older libc headers */
#endif

#define CRIB_NS_MAX 8

typedef struct crib_ns_plan {
  int new_flags;            /* CLONE_NEW* to create */
  int join_fd[CRIB_NS_MAX]; /* opened `path`s to setns into */
  int join_flag[CRIB_NS_MAX];
  char join_path[CRIB_NS_MAX][256];
  int n_join;
} crib_ns_plan;

/* Map an OCI namespace type ("pid", "network", "mount", "ipc", "uts", "user", "cgroup",
 * "time") to its CLONE_NEW* flag; 0 when unknown. */
int crib_ns_flag(const char *type);
const char *crib_ns_proc_name(int flag); /* "pid", "net", "mnt", ... as in /proc/<pid>/ns */

/* Build the plan from the spec, opening every `path` now so a bad path fails before fork. */
int crib_ns_plan_init(crib_ns_plan *p, json_t *spec, crib_err *err);
void crib_ns_plan_close(crib_ns_plan *p);

/* setns into every joined namespace of the given flags (user last: joining it first would
 * drop our capabilities over namespaces owned by the host). */
int crib_ns_join(crib_ns_plan *p, int flags, crib_err *err);

/* A new time namespace: unshare only prepares one for children, so write linux.timeOffsets
 * into it and then enter it ourselves (allowed before anything ran in it). Both go through the
 * procfs handle proc (procfs.h). */
int crib_ns_enter_new_time(json_t *spec, int proc, crib_err *err);

/* Write /proc/<pid>/{uid_map,gid_map} from linux.uidMappings/gidMappings, through a procfs
 * handle of our own (procfs.h). */
int crib_ns_write_id_maps(pid_t pid, json_t *spec, crib_err *err);
/* After joining a user namespace by path: the spec's uidMappings/gidMappings, when given, must
 * be that namespace's (as runc insists), not silently ignored. Reads self/{uid,gid}_map beneath
 * the procfs handle proc (procfs.h), never the container's /proc. */
int crib_ns_check_joined_maps(json_t *spec, int proc, crib_err *err);
/* The same from two arrays of {containerID, hostID, size} (a mount's uidMappings/gidMappings). */
int crib_ns_write_maps(pid_t pid, json_t *uids, json_t *gids, crib_err *err);

/* A forked child that runs build(arg) (in it: unshare a namespace, set it up) and then waits, so
 * that its caller can reach what it built through /proc/<pid>/ns/ (write its id maps, open or
 * pin its namespace). Returns the child's pid and, in *hold, what keeps it waiting; or -1 with
 * err (build's own error when it failed there). crib_ns_child_release lets it go and reaps it. */
pid_t crib_ns_child_start(int (*build)(void *arg, crib_err *err), void *arg, int *hold, crib_err *err);
void crib_ns_child_release(pid_t pid, int hold);

#endif
