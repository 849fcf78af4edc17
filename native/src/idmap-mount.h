/* Idmapped bind mounts (OCI mounts[].uidMappings/gidMappings; KEP-127 volumes). A mount's id
 * mapping is a user namespace given to mount_setattr(MOUNT_ATTR_IDMAP); the kernel allows that
 * only to a caller privileged over the filesystem's own user namespace, i.e. host root for
 * ext4, xfs, btrfs or a host tmpfs. A container in a user namespace has lost that by the time it
 * builds its rootfs, so these mounts are built, detached, before the container joins any
 * namespace (crib_idmap_prepare) and only attached later (mounts.c). */
#ifndef CRIB_IDMAP_MOUNT_H
#define CRIB_IDMAP_MOUNT_H

#include <jansson.h>
#include <stdbool.h>

#include "crib-error.h"

/* One prepared mount per entry of spec.mounts: a detached mount fd, or -1 (built later as
 * usual). */
typedef struct crib_premounts {
  int *fd;
  size_t n;
} crib_premounts;

/* Whether mounts[i] asks for an id mapping (either array present and non-empty). */
bool crib_mount_is_idmapped(json_t *m);

/* Build every idmapped bind of spec.mounts, and with all_binds every other bind too (bind
 * sources relative to bundle), detached, with their flags and mapping set, and each given the
 * root's propagation `root_prop` (crib_rootfs_propagation) before its own. A filesystem that
 * refuses idmapped mounts fails with its mount named. */
int crib_premounts_prepare(json_t *spec, const char *bundle, bool all_binds, unsigned long root_prop, crib_premounts *out,
                           crib_err *err);

/* Close what is left (the ones not attached). */
void crib_premounts_close(crib_premounts *p);

#endif
