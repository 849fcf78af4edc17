/* The template mount namespace: a container's mount namespace is unshared from it instead of
 * from the host's.
 *
 * unshare(CLONE_NEWNS) copies every mount of the namespace it is called in, with the kernel's
 * namespace lock held, and the container then detaches all of them after pivot_root. A node has
 * a few mounts a pod (three namespace pins, the pod's shm, each container's rootfs overlay, and
 * kubelet's volumes): at 250 pods, copying the host's table and detaching it was about 3 ms of
 * each container's start, and every mount and unmount on the node waited meanwhile. The template
 * holds one mount: an empty read-only tmpfs, with a directory `rootfs` to attach the container's
 * rootfs on (and `proc` and `sys`, below). Everything the container gets from the host (its
 * rootfs, every bind, its v1 cgroup directories; a user-namespaced one's device nodes, /sys and
 * /proc too) is cloned by descriptor before it enters the template (idmap-mount.h, mounts.h,
 * rootfs-dev.h, procfs.h).
 *
 * The namespace is pinned at <root>/.mount-template/ns, a bind mount of its nsfs file. The
 * kernel refuses to copy a mount namespace's file into another namespace (a loop), so the
 * directory is a private bind mount of itself: nothing it holds propagates anywhere. Made by
 * `crib-runtime mount-template` (the daemon runs it at start), used by `create` when present,
 * removed by `crib-runtime mount-template --remove`. A container never reaches it: it is
 * entered only by the runtime's own init before the container's namespace exists, and it holds
 * nothing. */
#ifndef CRIB_MOUNT_TEMPLATE_H
#define CRIB_MOUNT_TEMPLATE_H

#include "crib-error.h"

/* The directory of the template under the runtime's root, and the pin inside it. */
#define CRIB_MOUNT_TEMPLATE_DIR ".mount-template"
#define CRIB_MOUNT_TEMPLATE_PIN "ns"
/* The directory of the template's root the rootfs is attached on. */
#define CRIB_MOUNT_TEMPLATE_ROOTFS "/rootfs"
/* Where a user-namespaced container attaches copies of the host's /proc and /sys while it builds
 * its rootfs: the kernel lets a user namespace mount a procfs or sysfs only where one is already
 * fully visible (mount_too_revealing). Dropped with the template's root at pivot_root. */
#define CRIB_MOUNT_TEMPLATE_PROC "/proc"
#define CRIB_MOUNT_TEMPLATE_SYS "/sys"
/* Beside the pin, the layout of the template it pins (these directories): a template of another
 * layout is not used, and `mount-template` makes it anew. */
#define CRIB_MOUNT_TEMPLATE_LAYOUT_FILE "layout"
#define CRIB_MOUNT_TEMPLATE_LAYOUT "rootfs proc sys\n"

/* Make the template under root unless a valid one is pinned there (idempotent; serialised with
 * other runtimes by a lock file beside it). */
int crib_mount_template_make(const char *root, crib_err *err);

/* Unpin the template and remove its directory (nothing pinned: nothing to do). */
int crib_mount_template_remove(const char *root, crib_err *err);

/* A descriptor of the template's namespace (close-on-exec) when a valid one is pinned under
 * root; -1 otherwise (none made, what is there is not a mount namespace, or its layout file does
 * not name this runtime's layout), with err saying why when something is there but unusable
 * (err->msg empty when there is simply none). */
int crib_mount_template_open(const char *root, crib_err *err);

#endif
