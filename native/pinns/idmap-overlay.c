/* The rootfs of a container in a user-namespaced pod: an overlay whose lower layers are
 * idmapped mounts of the image's layer dirs, mapped with the pod's pinned user namespace. A file
 * the image has as uid 1234 is then uid 1234 inside the pod (host uid 100000 + 1234 with
 * kubelet's usual maps), the pod's root owns what the image's root owns, and the layers on disk
 * are shared, unchanged, with every other pod (no chown-copying, KEP-127). Each layer is cloned
 * detached (open_tree), given the mapping (mount_setattr MOUNT_ATTR_IDMAP, which needs host root
 * for the layers' filesystem: hence here, in the daemon's helper), and named to overlayfs as
 * /proc/self/fd/<n>; overlayfs takes private references to them, so they live as long as the
 * overlay. The upper and work dirs stay plain: what the container writes lands with the mapped
 * (host) ids, as the kernel sees them. Overlayfs accepts idmapped lower layers from Linux 5.19;
 * an idmapped mount of an overlay itself is refused (mount_setattr MOUNT_ATTR_IDMAP on an overlay
 * mount: EINVAL, on 6.18 too).
 *
 * Without --upper/--work the result is an image volume of such a pod: read-only, nosuid, nodev and
 * noexec (a volume is data, KEP-4639, as for the host's plain volumes), an overlay of the layers,
 * or for a single layer (overlayfs wants two lowers without an upper) that layer's idmapped mount
 * itself with those attributes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "pinns.h"

#define OVERLAY_OPTIONS_MAX 4095 /* mount(2) copies one page, NUL included */

int pinns_mount_overlay(const struct overlay_opts *o, crib_err *err) {
  if (o->nlower == 0) return crib_fail(err, 0, "mount-overlay: at least one --lower is required");
  if (o->nlower > PINNS_MAX_LOWERS)
    return crib_fail(err, E2BIG, "mount-overlay: %zu layers, overlayfs takes at most %d", o->nlower, PINNS_MAX_LOWERS);
  int userns = open(o->userns, O_RDONLY | O_CLOEXEC);
  if (userns < 0) return crib_fail(err, errno, "open user namespace `%s`", o->userns);
  int fds[PINNS_MAX_LOWERS];
  size_t nfds = 0;
  int ret = -1;
  static char options[OVERLAY_OPTIONS_MAX + 1];
  size_t off = 0;
  int n = snprintf(options, sizeof options, "lowerdir=");
  off = (size_t)n;
  for (size_t i = 0; i < o->nlower; i++) {
    int t = open_tree(AT_FDCWD, o->lowers[i], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (t < 0) {
      crib_fail(err, errno, "open_tree layer `%s`", o->lowers[i]);
      goto out;
    }
    fds[nfds++] = t;
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (unsigned long long)userns};
    if (mount_setattr(t, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) {
      crib_fail(err, errno, "mount_setattr MOUNT_ATTR_IDMAP on layer `%s` (does its filesystem support idmapped mounts?)",
                o->lowers[i]);
      goto out;
    }
    n = snprintf(options + off, sizeof options - off, "%s/proc/self/fd/%d", i ? ":" : "", t);
    if (n < 0 || (size_t)n >= sizeof options - off) goto too_long;
    off += (size_t)n;
  }
  if (o->upper == NULL && o->nlower == 1) {
    struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC};
    if (mount_setattr(fds[0], "", AT_EMPTY_PATH, &ro, sizeof ro) < 0) {
      crib_fail(err, errno, "mount_setattr ro,nosuid,nodev,noexec on layer `%s`", o->lowers[0]);
      goto out;
    }
    if (move_mount(fds[0], "", AT_FDCWD, o->target, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
      crib_fail(err, errno, "move_mount idmapped layer `%s` onto `%s`", o->lowers[0], o->target);
      goto out;
    }
    ret = 0;
    goto out;
  }
  if (o->upper != NULL) {
    n = snprintf(options + off, sizeof options - off, ",upperdir=%s,workdir=%s", o->upper, o->work);
    if (n < 0 || (size_t)n >= sizeof options - off) goto too_long;
  }
  unsigned long flags = o->upper == NULL ? MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC : 0;
  if (mount("overlay", o->target, "overlay", flags, options) < 0) {
    crib_fail(err, errno, "mount overlay on `%s` over %zu idmapped layers", o->target, o->nlower);
    goto out;
  }
  ret = 0;
  goto out;
too_long:
  crib_fail(err, E2BIG, "mount-overlay: the options for %zu layers exceed one page", o->nlower);
out:
  for (size_t i = 0; i < nfds; i++) (void)close(fds[i]); /* the overlay holds its own references */
  (void)close(userns);
  return ret;
}
