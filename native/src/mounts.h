/* The spec's `mounts` array, applied under the container's rootfs before pivot_root. Every
 * destination is resolved with openat2(RESOLVE_IN_ROOT), so a symlink in the image can never
 * point a mount outside the rootfs; the mount then targets /proc/self/fd/<n>. */
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

/* What a mount needs to know about the container being built. */
typedef struct crib_mount_env {
  const char *bundle;   /* for relative bind sources */
  bool userns;          /* in a new user namespace: keep locked flags on remount */
  const char *cgroup_path; /* the container's cgroup, relative to each hierarchy's root */
  bool cgroup_v2;          /* unified hierarchy: mount cgroup2 instead of binding v1 dirs */
} crib_mount_env;

int crib_mount_parse_options(json_t *options, crib_mount_opts *o, crib_err *err);

/* Propagation flag for "private", "rslave", ... (0 when unknown). */
unsigned long crib_mount_propagation(const char *name);

/* Open path (absolute, taken inside the root) as O_PATH, never escaping rootfd. */
int crib_open_in_root(int rootfd, const char *path, crib_err *err);
/* Create path inside the root (directories, and the last component as a file when file). */
int crib_mkdir_in_root(int rootfd, const char *path, bool file, crib_err *err);

/* Apply one entry of `mounts` (index i for messages). */
int crib_mount_entry(int rootfd, json_t *m, size_t i, const crib_mount_env *env, crib_err *err);

/* Remount a bind mount with flags, keeping flags the kernel locks in a user namespace. */
int crib_remount_bind(const char *target, unsigned long flags, bool userns, crib_err *err);

#endif
