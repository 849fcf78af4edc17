/* Replacing a file so that a reader, or the node after a crash, sees either the old content or
 * the new one, never a torn or empty file. The one writer every native binary uses:
 * crib-runtime's state.json, crib-monitor's exit file; and, without the syncs, pid files.
 *
 * How: a temp file is created beside the target (rename is atomic only within a filesystem),
 * written whole, fsync'd, renamed over the target, and the directory is fsync'd so the rename
 * itself is durable. A failure at any step removes the temp file, so the target keeps its old
 * content (or stays absent) and nothing is left behind.
 *
 * Temp names: ".tmp-<target name>-<12 lowercase hex digits>" in the target's directory, the same
 * pattern as the daemon's TypeScript writer (src/store/atomic-file.ts, ATOMIC_TEMP_PREFIX), so
 * one sweep (a name starting with ".tmp-") finds the leftovers of a writer that was killed
 * between creating its temp file and renaming it. */
#ifndef CRIB_ATOMIC_FILE_H
#define CRIB_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "crib-error.h"

/* The prefix of every temp file (see above). */
#define CRIB_ATOMIC_TEMP_PREFIX ".tmp-"

/* Replace path with the len bytes of data, with exactly `mode` (the umask does not apply).
 * Returns 0, or -1 with err naming the failed syscall and its path. The temp file is opened
 * O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, so a name planted in the directory is never followed or
 * reused. When only the final directory fsync fails, the new content is already in place but
 * may not survive a crash: the call still fails, and writing again is the fix. */
int crib_atomic_write_file(const char *path, const void *data, size_t len, mode_t mode, crib_err *err);

/* The same replacement, atomic for readers but not made durable (no fsync of the file or its
 * directory): for files that mean nothing once the node has restarted, such as pid files, which
 * one process hands another while both run. A crash may leave the old content, the new one, or
 * (for a file that did not exist) none, never a torn file. The two fsyncs cost milliseconds on
 * a disk-backed directory, on every call path that writes such a file (each exec's pid file). */
int crib_atomic_replace_file(const char *path, const void *data, size_t len, mode_t mode, crib_err *err);

/* The two halves of crib_atomic_write_file, for a writer that must do other work between them
 * (the daemon's: src/store/atomic-file.ts, through its addon). crib_atomic_prepare: a temp file
 * beside `path` holding the len bytes of data, with exactly `mode`, synced, its name (not its
 * path) written to tmp (tmp_n bytes, at least NAME_MAX + 1); `path` itself is untouched. Returns
 * 0, or -1 with err (no temp file left). */
int crib_atomic_prepare(const char *path, const void *data, size_t len, mode_t mode, char *tmp, size_t tmp_n,
                        crib_err *err);

/* The temp file named `tmp` (crib_atomic_prepare's) renamed over `path`, then, with `sync_dir`,
 * the directory synced. Returns 0; -1 with err when the rename failed (the temp file removed,
 * `path` untouched); -2 with err when only the directory's sync failed, the new content in place
 * but maybe not durable. */
int crib_atomic_commit(const char *path, const char *tmp, bool sync_dir, crib_err *err);

/* The directory `dir` synced, so the entries made, renamed or removed in it outlive a power cut.
 * Returns 0, or -1 with err. */
int crib_sync_dir(const char *dir, crib_err *err);

#endif
