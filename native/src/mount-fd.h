/* Mounting by file descriptor (the new mount API). A mount is built detached: a new filesystem
 * instance (fsopen/fsconfig/fsmount) or a copy of an existing tree (open_tree). It gets its flags
 * while nothing can see it (mount_setattr), and only then is it attached onto a target the caller
 * opened and checked (move_mount onto that fd). No path is looked up between the check and the
 * mount, so a racing rename or symlink cannot send a mount elsewhere (the CVE-2021-30465 class),
 * and no mount is ever visible with weaker flags than asked for.
 *
 * Every function takes `what` (the destination as the spec names it) for its messages. */
#ifndef CRIB_MOUNT_FD_H
#define CRIB_MOUNT_FD_H

#include <stdbool.h>

#include "crib-error.h"

/* A new detached instance of fstype with source (NULL: none) and data ("key=value,flag,...",
 * NULL or "" for none). ms_flags: the MS_* flags parsed from the spec's options; per-mount ones
 * (ro, nosuid, nodev, noexec, atime) become mount attributes, sync/dirsync/mand superblock flags.
 * Returns the mount fd (close-on-exec). A refusal carries the filesystem's own reason. */
int crib_mnt_new(const char *fstype, const char *source, const char *data, unsigned long ms_flags,
                 const char *what, crib_err *err);

/* crib_mnt_new with one more option passed as a file descriptor (FSCONFIG_SET_FD): procfs's
 * "pidns", which gives a runtime outside a PID namespace a procfs of that namespace. */
int crib_mnt_new_with_fd(const char *fstype, const char *source, const char *data, unsigned long ms_flags,
                         const char *fd_key, int fd, const char *what, crib_err *err);

/* A detached copy of the mount tree at dirfd/path (path "" means dirfd itself; symlinks in path
 * are followed, as the source is the caller's). recursive: with the mounts below it. */
int crib_mnt_clone(int dirfd, const char *path, bool recursive, const char *what, crib_err *err);

/* Add the per-mount restrictions of ms_flags (ro, nosuid, nodev, noexec, nodiratime, atime) to
 * mfd; recursive: to every mount below it too. Restrictions already there are kept. */
int crib_mnt_restrict(int mfd, unsigned long ms_flags, bool recursive, const char *what, crib_err *err);

/* Raw mount_setattr: set then clear MOUNT_ATTR_* bits (the spec's recursive r* options). */
int crib_mnt_setattr(int mfd, unsigned long long set, unsigned long long clr, bool recursive,
                     const char *what, crib_err *err);

/* Propagation (MS_PRIVATE, MS_SLAVE, MS_SHARED, MS_UNBINDABLE, with MS_REC for the subtree). */
int crib_mnt_propagate(int mfd, unsigned long ms_propagation, const char *what, crib_err *err);

/* Attach mfd onto the target fd (an O_PATH fd the caller opened and checked). Afterwards mfd
 * names the attached mount, so later steps can keep working on it by fd. */
int crib_mnt_attach(int mfd, int target, const char *what, crib_err *err);

#endif
