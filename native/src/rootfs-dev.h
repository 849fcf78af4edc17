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

/* The most device nodes copied beforehand (crib_dev_clone_host_nodes): each is a descriptor
 * held until the rootfs is built. */
#define CRIB_MAX_HOST_NODES 64

/* Copies of the host's device nodes, one for each device the container gets (the defaults,
 * then linux.devices, in order), each checked to be the device asked for. */
typedef struct crib_host_nodes {
  int fd[CRIB_MAX_HOST_NODES];
  size_t n;
} crib_host_nodes;

/* How many device nodes the container gets: the defaults and linux.devices. */
size_t crib_dev_count(json_t *spec);

/* Makes out's copies, as host root in the host's mount namespace: for a user-namespaced
 * container built in the template mount namespace (mount-template.h), which has none of the
 * host's paths. More than CRIB_MAX_HOST_NODES: E2BIG. */
int crib_dev_clone_host_nodes(json_t *spec, crib_host_nodes *out, crib_err *err);
void crib_host_nodes_close(crib_host_nodes *h);

/* Device nodes, /dev/{fd,stdin,stdout,stderr} and /dev/ptmx. userns: nodes are bind-mounted
 * from the host (mknod is refused there), after checking the host node is the asked device:
 * from host's copies when given (taken), else from the host's paths. */
int crib_dev_nodes(int rootfd, json_t *spec, bool userns, crib_host_nodes *host, crib_err *err);

/* Bind the pty slave peer (a fd, never a path) onto /dev/console in the current root (after
 * pivot): /dev/console is opened as a plain path, created when missing, and must not be a
 * directory. */
int crib_dev_console(int peer, crib_err *err);

#endif
