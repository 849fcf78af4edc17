/* Creating a container: the parent half (`create`/`run`: state dir, cgroup, fork, id maps, the
 * conversation with the child) and the child half (namespaces, rootfs, process setup, the park
 * on exec.fifo, execve).
 *
 * Process tree: the container init is forked by crib-runtime itself (clone with CLONE_NEWPID),
 * so it starts as our child; when `create` exits the kernel reparents it to the caller's
 * nearest child subreaper (crib-monitor) or to pid 1, exactly like runc's init. With a new user
 * namespace (or a joined one: a user-namespaced pod's) a middle process is needed (the pid namespace must be owned by the new user
 * namespace, so it is unshared after it and entered by a fork); `create` marks itself a child
 * subreaper so that init is reparented to it first, and from it to the caller's subreaper.
 *
 * Joining an existing PID namespace (a pod's, shared by its containers) is the other case with a
 * middle process, for security: everything in that namespace can be seen, and with
 * CAP_SYS_PTRACE attached to, by the pod's other containers. So the child stays in our PID
 * namespace while it sets the container up (joins the other namespaces, builds the rootfs with a
 * procfs of the joined namespace, pivots, takes on the container's user, capabilities and
 * filter, closes every fd of ours) and only then forks the init into the joined namespace
 * (pidns-fork.h); before, the init was born there and did all of that in sight, with the host's
 * mount namespace and every capability. This needs procfs's pidns option (Linux 6.15); on an
 * older kernel, and with a new user namespace, the init joins first, as before (with a warning).
 * The hooks the middle process runs itself (createContainer) then run outside that PID
 * namespace, with its pid in their state. */
#ifndef CRIB_CONTAINER_H
#define CRIB_CONTAINER_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "crib-error.h"
#include "cgroup/cgroup.h"
#include "process.h"
#include "state.h"

typedef struct crib_create_opts {
  const char *root;
  const char *id;
  const char *bundle;         /* NULL: the current directory */
  const char *pid_file;       /* may be NULL */
  const char *console_socket; /* may be NULL */
  bool no_pivot;
  int preserve_fds;           /* fds 3..3+n-1 pass to the process (runc's --preserve-fds) */
} crib_create_opts;

/* The device cgroup rules create applies once the init has set up /dev ({"devices": [...]} in
 * *out, NULL when there are none); restore applies them once criu has made /dev. */
int crib_container_device_rules(json_t *linux_, json_t **out, crib_err *err);

/* Create the container and leave its init parked on exec.fifo (exec-fifo.h). Fills st (pid,
 * paths). */
int crib_container_create(const crib_create_opts *o, crib_state *st, crib_err *err);

/* Release a created container and wait until its process has exec'd its program (exec-fifo.h);
 * fails when the init died or failed first. Then the poststart hooks. */
int crib_container_start(const char *root, const char *id, crib_err *err);

/* Kill everything and remove the state dir and cgroup; refuses a running container unless
 * force. */
int crib_container_delete(const char *root, const char *id, bool force, crib_err *err);

/* The cgroup recorded for a container. */
int crib_container_cgroup(const crib_state *st, crib_cgroup *cg, crib_err *err);

/* Wait (up to timeout_ms) for st->pid to be gone; 0 when it is. */
int crib_container_wait_gone(const crib_state *st, int timeout_ms);

/* The child half. Everything it needs, gathered by the parent before fork. */
typedef struct crib_init_ctx {
  json_t *spec;
  const char *id;
  const char *bundle;
  const char *rootfs;
  int sync_fd;       /* child end */
  int fifo_fd;       /* exec.fifo opened O_RDWR before fork: read blocks until `start` */
  int result_fd;     /* exec-result.fifo, O_RDWR: the report `start` waits for (exec-fifo.h) */
  bool no_pivot;
  bool terminal;
  int preserve_fds;
  int new_flags;     /* CLONE_NEW* still to create */
  const crib_cgroup *cg; /* the container's cgroup (the parent moves us into it) */
  bool in_cgroup;        /* born inside it already (v2 CLONE_INTO_CGROUP) */
  struct crib_ns_plan *plan;
  crib_lsm_host lsm;     /* probed by create on the host (process.h) */
  /* >= 0: the PID namespace to join, entered last by forking (see above); -1: entered already
   * (or a new one). */
  int pidns_fd;
  /* Joins an existing user namespace (a pod's, pinned by crib-pinns): set up like a new one
   * (PID namespace made inside it, devices bound), without writing id maps. */
  bool join_userns;
  /* >= 0: the template mount namespace (mount-template.h) to unshare ours from, everything the
   * container gets from the host cloned before entering it; -1: unshared from the host's. */
  int mnt_template;
} crib_init_ctx;

/* Never returns: execs the container process or reports an error on sync_fd and _exits. */
void crib_container_init(crib_init_ctx *c) __attribute__((noreturn));

#endif
