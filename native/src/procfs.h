/* Writes to /proc that a container cannot redirect (the CVE-2025-52881 class).
 *
 * A path such as /proc/self/oom_score_adj or /proc/sys/kernel/shmmax means what it says only if
 * /proc is the procfs it seems to be. In a container that is not a given: /proc may be a symlink
 * into a volume another container rewrites, something may be bind-mounted over an entry, and the
 * mount namespace may be the container's own. So crib-runtime never writes through the
 * container's /proc. It writes through a handle on a procfs nobody else can reach: a new detached
 * procfs instance (fsopen/fsmount), or, where the kernel refuses one (a user namespace that does
 * not own the pid namespace), a detached copy of /proc taken before the container's mounts exist
 * (open_tree). Every entry is then resolved beneath that handle with no symlinks, no magic links
 * and no mount crossings, and the file opened is checked to be on procfs before it is used. */
#ifndef CRIB_PROCFS_H
#define CRIB_PROCFS_H

#include <stdbool.h>
#include <stddef.h>

#include "crib-error.h"

/* A procfs handle (an fd on the root of a private procfs, close-on-exec). Call it before the
 * container's filesystem is set up: the open_tree fallback copies whatever /proc is then. */
int crib_procfs_open(crib_err *err);

/* A detached copy of the current mount namespace's /proc (open_tree), checked to be the root of
 * a procfs: the open_tree fallback taken beforehand, by a process about to enter a mount
 * namespace that has no /proc (the template, mount-template.h) and then a user namespace. */
int crib_procfs_copy(crib_err *err);

/* crib_procfs_open with *copy (crib_procfs_copy; -1: none) as its fallback instead of a copy of
 * the current /proc: taken (set to -1) when used. */
int crib_procfs_open_from(int *copy, crib_err *err);

/* Open rel (relative, e.g. "sys/kernel/shmmax", "self/oom_score_adj", "thread-self/attr/exec")
 * beneath the handle with flags; "self" and "thread-self" name the calling process and thread.
 * Fails on any symlink, magic link or mount crossing, and when the file is not on procfs. */
int crib_procfs_openat(int proc, const char *rel, int flags, crib_err *err);

/* Write all of buf to rel (opened O_WRONLY). */
int crib_procfs_write(int proc, const char *rel, const char *buf, size_t len, crib_err *err);

/* Read up to cap-1 bytes of rel into buf, NUL-terminated. */
int crib_procfs_read(int proc, const char *rel, char *buf, size_t cap, crib_err *err);

/* Does rel exist beneath the handle (same resolution rules)? */
bool crib_procfs_exists(int proc, const char *rel);

/* Can this kernel make a procfs of the PID namespace pidns_fd for a caller outside it (the
 * pidns option, Linux 6.15)? Asks the kernel itself; nothing is mounted. */
bool crib_procfs_pidns_supported(int pidns_fd);

/* Reopen fd (typically O_PATH, already verified) with flags through thread-self/fd/<fd> of the
 * handle: the object is checked first and only then opened for real. */
int crib_procfs_reopen(int proc, int fd, int flags, crib_err *err);

#endif
