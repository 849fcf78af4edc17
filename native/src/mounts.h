/* The spec's `mounts` array, applied under the container's rootfs before pivot_root. Each mount is
 * built detached with its flags (mount-fd.h), its destination is opened once inside the rootfs
 * and checked (root-path.h), and the mount is attached onto that fd. A destination may go
 * through symlinks inside the rootfs, except for the kernel filesystems (proc, sysfs, devpts,
 * mqueue, cgroup) and /dev, which must sit on plain paths: crib-runtime works inside them later
 * (masked paths, device nodes, the console) and the container must see them where they were
 * mounted. */
#ifndef CRIB_MOUNTS_H
#define CRIB_MOUNTS_H

#include <jansson.h>
#include <stdbool.h>

#include "crib-error.h"

typedef struct crib_mount_opts {
  unsigned long flags;       /* MS_* to set */
  unsigned long clear;       /* MS_* explicitly cleared ("rw", "suid", ...) */
  unsigned long propagation; /* MS_SHARED|MS_SLAVE|MS_PRIVATE|MS_UNBINDABLE, maybe |MS_REC */
  char data[1024];           /* filesystem options passed through */
  bool bind;
  bool recursive;
  /* Recursive attributes ("rro", "rnosuid", ...: OCI 1.1), applied with mount_setattr to the
   * mount and everything below it. */
  unsigned long long attr_set, attr_clr;
} crib_mount_opts;

/* The container's own directory of each v1 cgroup hierarchy (<mount point><cgroup path>),
 * cloned detached; name is the hierarchy's directory under /sys/fs/cgroup ("memory",
 * "cpu,cpuacct"). */
#define CRIB_MAX_V1_HIERARCHIES 32
typedef struct crib_v1_cgroups {
  size_t n;
  char name[CRIB_MAX_V1_HIERARCHIES][128];
  int fd[CRIB_MAX_V1_HIERARCHIES];
} crib_v1_cgroups;

/* Clone the container's directory of every v1 hierarchy mounted on /sys/fs/cgroup (as this
 * process sees it), each with the root's propagation (crib_rootfs_propagation). A hierarchy
 * without a directory of the container's is left out. */
int crib_v1_cgroups_clone(const char *cgroup_path, unsigned long root_prop, crib_v1_cgroups *out, crib_err *err);
void crib_v1_cgroups_close(crib_v1_cgroups *c);

/* What a mount needs to know about the container being built. */
typedef struct crib_mount_env {
  const char *bundle;   /* for relative bind sources */
  const char *cgroup_path; /* the container's cgroup, relative to each hierarchy's root */
  bool cgroup_v2;          /* unified hierarchy: mount cgroup2 instead of binding v1 dirs */
  /* A procfs gets the PID namespace of this fd (procfs's pidns option) instead of the caller's:
   * for a runtime that builds the rootfs outside the PID namespace it joins (-1: the caller's). */
  int proc_pidns;
  /* Mounts built before the container joined its namespaces (idmap-mount.h), by index; an
   * entry here is attached as it is and its fd taken (set to -1). NULL: none. */
  struct crib_premounts *pre;
  /* v1: the hierarchies' clones made before the container entered its mount namespace (taken,
   * and closed, by the cgroup mount); NULL: cloned when the cgroup mount is made. */
  crib_v1_cgroups *v1;
  /* A recursive copy of the host's /sys made beforehand (as v1), for the sysfs a user namespace
   * may not make: taken by the first sysfs mount that needs it. NULL or -1: copied from the
   * current /sys then. */
  int *host_sys;
  /* The root's propagation (crib_rootfs_propagation), given to every copy of a host mount. */
  unsigned long root_prop;
  /* linux.mountLabel when the host runs SELinux (NULL otherwise, and the label is ignored, as
   * containerd ignores SELinux options on a host without it): the context= of every tmpfs and
   * mqueue the container gets. */
  const char *mount_label;
} crib_mount_env;

int crib_mount_parse_options(json_t *options, crib_mount_opts *o, crib_err *err);

/* For a tmpfs (other types: nothing): add `context="<label>"` to o's data. An mqueue takes no
 * context= option (EINVAL); its root is labelled once it is mounted instead, as runc does. */
int crib_mount_add_label(crib_mount_opts *o, const char *type, const char *label, crib_err *err);

/* Propagation flag for "private", "rslave", ... (0 when unknown). */
unsigned long crib_mount_propagation(const char *name);
/* The propagation of the container's root: linux.rootfsPropagation, rslave when unset (so
 * nothing mounted inside the container reaches the host, and what the host mounts below a bind
 * source still reaches it). Whatever the container gets of the host's mounts gets it too, unless
 * its own entry asks for another. */
int crib_rootfs_propagation(json_t *spec, unsigned long *flags, crib_err *err);

/* Apply one entry of `mounts` (index i for messages). */
int crib_mount_entry(int rootfd, json_t *m, size_t i, const crib_mount_env *env, crib_err *err);

#endif
