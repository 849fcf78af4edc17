/* Paths inside the container's root, resolved on file descriptors. Every lookup is an openat2
 * relative to the root's fd with RESOLVE_IN_ROOT: ".." and absolute symlinks stop at the root, so
 * nothing an image or a shared volume holds can lead a lookup outside it, and magic links
 * (/proc/<pid>/root and friends) are never followed. What was opened is what gets used: callers
 * check the fd (its kind, its filesystem) and mount onto or write through that fd, never through
 * the path again.
 *
 * no_symlinks refuses every symlink on the way. crib-runtime asks for it where it relies on the
 * path afterwards: the kernel filesystems it mounts (/proc, /sys, /dev/pts, ...) and /dev must be
 * where the container will see them, not wherever a symlink in a volume pointed at the time. */
#ifndef CRIB_ROOT_PATH_H
#define CRIB_ROOT_PATH_H

#include <stdbool.h>
#include <sys/types.h>

#include "crib-error.h"

/* openat2(rootfd, path, flags) inside the root; path is absolute as the container sees it. */
int crib_root_open(int rootfd, const char *path, int flags, bool no_symlinks, crib_err *err);

/* Create what is missing of path: directories, and the last component as an empty file when
 * file. Each component is created on a parent fd opened inside the root. */
int crib_root_mkdirs(int rootfd, const char *path, bool file, bool no_symlinks, crib_err *err);

/* A mount target: path created when missing, opened O_PATH, and checked to be a directory (dir)
 * or not one (!dir), as the mount source is. */
int crib_root_target(int rootfd, const char *path, bool dir, bool no_symlinks, crib_err *err);

/* "directory", "regular file", "symlink", ... for messages. */
const char *crib_file_kind(mode_t mode);

#endif
