/* The container's /dev: the devpts and /dev/shm every container gets, the device nodes (the
 * defaults and linux.devices), the /dev/fd links and /dev/ptmx, and the pty bound on
 * /dev/console. Everything is created on fds opened inside the rootfs on
 * plain paths (root-path.h) and mounted by fd (mount-fd.h). */
#ifndef CRIB_ROOTFS_DEV_H
#define CRIB_ROOTFS_DEV_H

#include <jansson.h>
#include <stdbool.h>

#include "crib-error.h"

/* devpts on /dev/pts and a tmpfs on /dev/shm, unless the spec mounts its own there. */
int crib_dev_default_mounts(int rootfd, json_t *spec, crib_err *err);

/* Device nodes, /dev/{fd,stdin,stdout,stderr} and /dev/ptmx. userns: nodes are bind-mounted
 * from the host (mknod is refused there), after checking the host node is the asked device. */
int crib_dev_nodes(int rootfd, json_t *spec, bool userns, crib_err *err);

/* Bind the pty slave peer (a fd, never a path) onto /dev/console in the current root (after
 * pivot): /dev/console is opened as a plain path, created when missing, and must not be a
 * directory. */
int crib_dev_console(int peer, crib_err *err);

#endif
