/* The container's filesystem view: rootfs propagation, the rootfs bind, `mounts`, /dev (devices,
 * symlinks, ptmx), pivot_root, then maskedPaths, readonlyPaths and root.readonly. Every mount is
 * made by fd onto a target opened inside the rootfs (mounts.h, rootfs-dev.h). */
#ifndef CRIB_ROOTFS_H
#define CRIB_ROOTFS_H

#include <jansson.h>
#include <stdbool.h>

#include "crib-error.h"

typedef struct crib_rootfs_cfg {
  json_t *spec;
  const char *bundle;
  const char *rootfs;      /* absolute, resolved */
  unsigned long root_prop; /* linux.rootfsPropagation's flags (crib_rootfs_propagation) */
  bool userns;             /* devices are bind-mounted from the host instead of mknod */
  bool no_pivot;           /* --no-pivot: MS_MOVE + chroot */
  const char *cgroup_path; /* the container's cgroup path (see mounts.h) */
  bool cgroup_v2;
  int proc_pidns;          /* see crib_mount_env (-1: none) */
  struct crib_premounts *pre; /* see crib_mount_env (NULL: none) */
  const char *mount_label;    /* see crib_mount_env (NULL: none) */
  /* >= 0: a detached clone of the rootfs made before entering a user namespace (attached onto
   * our cwd, the rootfs dir, entered then) or the template mount namespace, instead of binding
   * the rootfs by path; taken by crib_rootfs_build. */
  int rootfs_mfd;
  /* In the template mount namespace (mount-template.h): the clone goes onto its `rootfs`
   * directory, and / is left as it is (it holds nothing of the host's, and is dropped at
   * pivot_root). */
  bool in_template;
  struct crib_v1_cgroups *v1; /* see crib_mount_env (NULL: none) */
  /* A user namespace in the template: copies of the host's device nodes and /sys made
   * beforehand (crib_dev_nodes, crib_mount_env); NULL: none. */
  struct crib_host_nodes *host_nodes;
  int *host_sys;
  int rootfd; /* set by crib_rootfs_build: the rootfs mount (O_PATH), pivoted into, then closed */
} crib_rootfs_cfg;

/* A detached recursive clone of the rootfs (the user-namespace path's rootfs_mfd), with the
 * root's propagation `prop` (crib_rootfs_propagation) and a root that is not shared: -1 on
 * error. */
int crib_rootfs_clone(const char *rootfs, unsigned long prop, crib_err *err);

/* Everything up to pivot_root: propagation, the rootfs bind, mounts, /dev. */
int crib_rootfs_build(crib_rootfs_cfg *c, crib_err *err);

/* pivot_root (or MS_MOVE + chroot); afterwards "/" is the container's root. */
int crib_rootfs_pivot(crib_rootfs_cfg *c, crib_err *err);

/* After pivot: maskedPaths, readonlyPaths, root.readonly, then a shared or unbindable
 * rootfsPropagation on "/". */
int crib_rootfs_finish(const crib_rootfs_cfg *c, crib_err *err);

#endif
