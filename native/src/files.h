/* Small file helpers shared by the runtime's modules. All of them follow the crib_err contract.
 * Nothing here writes to /proc: that goes through procfs.h, never through a path. */
#ifndef CRIB_FILES_H
#define CRIB_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "crib-error.h"

/* Read up to cap-1 bytes of path into buf, NUL-terminated; *len gets the byte count. */
int crib_read_file(const char *path, char *buf, size_t cap, size_t *len, crib_err *err);

/* mkdir -p with mode for each created component. */
int crib_mkdir_p(const char *path, mode_t mode, crib_err *err);

/* rm -rf of a directory that holds only plain files (state directories). ENOENT is success. */
int crib_rm_dir(const char *path, crib_err *err);

/* Write a decimal number to path (pid files), atomically (crib-atomic-file.h). */
int crib_write_pid_file(const char *path, pid_t pid, crib_err *err);

/* Close every fd >= from except those listed in keep (at most 128 of them): whatever a caller
 * leaked to us must not reach the container process, not even until its execve (close-on-exec
 * is not enough: during execve, and during a chdir before it, /proc/self/fd/N still resolves,
 * so a leaked directory fd would be a way out of the rootfs: the runc CVE-2024-21626 class). */
int crib_close_fds_from(int from, const int *keep, size_t n, crib_err *err);

/* snprintf into a char array, true when it fit (checking the result also keeps gcc's
 * -Wformat-truncation quiet about paths built from PATH_MAX buffers). */
#define CRIB_FMT(buf, ...) (snprintf((buf), sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

#endif
