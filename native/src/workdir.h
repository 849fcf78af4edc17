/* process.cwd: entering the container process's working directory, and proving it is inside
 * the container's root. */
#ifndef CRIB_WORKDIR_H
#define CRIB_WORKDIR_H

#include <jansson.h>

#include "crib-error.h"

/* chdir to process.cwd ("/" when unset), resolved in the calling process's (the container's)
 * mount namespace and root, then check that the result is reachable from that root: a cwd
 * such as /proc/self/fd/N names whatever fd N is, and a directory fd from the host would put
 * the container process outside its rootfs (the runc CVE-2024-21626 class). Fails with a
 * message naming process.cwd otherwise. */
int crib_enter_workdir(json_t *process, crib_err *err);

#endif
