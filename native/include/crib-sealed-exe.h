/* Keeping crib's host binaries out of a container's reach (the runc CVE-2019-5736 class).
 *
 * A process that runs a host binary inside a container's PID namespace (crib-runtime create's
 * init until it execs, crib-runtime exec's child, crib-pinns pod-init) shows that binary to the
 * container as /proc/<pid>/exe. A root process in the container could open it, wait for every
 * user of the binary to exit, reopen it for writing and replace it: the host's next call of the
 * binary then runs the container's code as host root. The same happens when the container makes
 * the runtime execute itself (a script whose interpreter is `#!/proc/self/exe`).
 *
 * The defence: before entering any container namespace, such a process re-executes itself from a
 * copy of its binary in a memfd sealed against writing, growing and shrinking (so /proc/<pid>/exe
 * names a file nothing can change, whoever holds it), and becomes non-dumpable, so a container
 * process without CAP_SYS_PTRACE cannot open /proc/<pid>/{exe,fd,mem,...} of it at all until its
 * execve of the container's program resets that. */
#ifndef CRIB_SEALED_EXE_H
#define CRIB_SEALED_EXE_H

#include <stdbool.h>

#include "crib-error.h"

/* True when /proc/self/exe is a memfd carrying every seal crib adds (checked on the file itself,
 * with F_GET_SEALS: nothing a caller can set, such as an environment variable, can fake it). */
bool crib_exe_is_sealed(void);

/* A new memfd named `name` (close-on-exec, executable) holding the bytes of the open file `from`
 * (`path` names it in errors), sealed with every seal crib_exe_is_sealed checks. Returns its fd,
 * or -1 with err set. The daemon serves its helpers from such copies too (the libc addon). */
int crib_sealed_copy(int from, const char *path, const char *name, crib_err *err);

/* Make the calling process run from a sealed memfd copy of its own binary: returns 0 at once
 * when it already does (the re-executed process, or a binary an administrator serves from a
 * sealed memfd); otherwise copies /proc/self/exe into a new memfd named `name`, seals it and
 * re-executes it with the same argv and environment, and returns only on failure (-1, err set).
 * Call it before anything with effects: the re-executed process runs main again from the start.
 * The daemon runs both binaries from sealed copies it holds (src/runtime/sealed-binaries.ts),
 * so its calls skip the copy. */
int crib_sealed_exe_ensure(const char *name, char **argv, crib_err *err);

/* crib_sealed_exe_ensure, then PR_SET_DUMPABLE 0: what every path that enters a container's or
 * pod's namespaces calls before doing so. Non-dumpable is inherited by fork and reset by the
 * final execve of the container's program. */
int crib_guard_host_binary(const char *name, char **argv, crib_err *err);

#endif
