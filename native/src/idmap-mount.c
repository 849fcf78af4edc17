#include "idmap-mount.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "mount-fd.h"
#include "mounts.h"
#include "namespaces.h"
#include "procfs.h"
#include "spec.h"

bool crib_mount_is_idmapped(json_t *m) {
  return json_array_size(json_object_get(m, "uidMappings")) > 0 ||
         json_array_size(json_object_get(m, "gidMappings")) > 0;
}

static int unshare_user(void *arg, crib_err *err) {
  (void)arg;
  return unshare(CLONE_NEWUSER) < 0 ? crib_fail(err, errno, "unshare a user namespace") : 0;
}

/* A user namespace with the given maps, held by the returned fd: a child unshares one, we write
 * its maps (as its parent, which may map any id) and keep /proc/<child>/ns/user open; the child
 * is then let go, the namespace lives on in the fd. */
static int userns_with_maps(json_t *uids, json_t *gids, const char *what, crib_err *err) {
  int hold;
  pid_t pid = crib_ns_child_start(unshare_user, NULL, &hold, err);
  if (pid < 0) return crib_err_wrap(err, "mount `%s`: could not make a user namespace for its id mapping", what);
  int fd = -1;
  if (crib_ns_write_maps(pid, uids, gids, err) < 0) {
    crib_err_wrap(err, "mount `%s`: uidMappings/gidMappings", what);
  } else {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
    /* We are still in the host's mount namespace: /proc is the host's. */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) crib_fail(err, errno, "open `%s`", path);
  }
  crib_ns_child_release(pid, hold);
  return fd;
}

static bool is_bind(json_t *m) {
  const char *type = crib_json_str(m, "type");
  if (type && strcmp(type, "bind") == 0) return true;
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(m, "options"), i, v) {
    const char *opt = json_string_value(v);
    if (opt && (strcmp(opt, "bind") == 0 || strcmp(opt, "rbind") == 0)) return true;
  }
  return false;
}

/* A detached clone of `source` with the root's propagation (its own, if it asks for one, is set
 * once it is attached) and the mount's flags and attributes applied; -1 on error. Made as host
 * root, the clone of a shared source is a peer of it: without this, what the container mounts
 * below it would reach the host. */
static int clone_with_options(const char *source, const crib_mount_opts *o, unsigned long root_prop,
                              const char *dest, crib_err *err) {
  int mfd = crib_mnt_clone(AT_FDCWD, source, o->recursive, dest, err);
  if (mfd < 0) return -1;
  if (crib_mnt_propagate(mfd, root_prop, dest, err) < 0 ||
      crib_mnt_restrict(mfd, o->flags, false, dest, err) < 0 ||
      crib_mnt_setattr(mfd, o->attr_set, o->attr_clr, true, dest, err) < 0) {
    close(mfd);
    return -1;
  }
  return mfd;
}

static int build_one(json_t *m, const char *bundle, const char *dest, unsigned long root_prop, int *userns,
                     json_t **userns_key, crib_err *err) {
  bool idmapped = crib_mount_is_idmapped(m);
  json_t *uids = json_object_get(m, "uidMappings"), *gids = json_object_get(m, "gidMappings");
  if (idmapped && (json_array_size(uids) == 0 || json_array_size(gids) == 0))
    return crib_fail(err, 0, "an idmapped mount needs both uidMappings and gidMappings");
  crib_mount_opts o;
  if (crib_mount_parse_options(json_object_get(m, "options"), &o, err) < 0) return -1;
  const char *type = crib_json_str(m, "type");
  if (!is_bind(m))
    return crib_fail(err, 0, "uidMappings/gidMappings are supported on bind mounts only (type `%s`)",
                     type ? type : "");
  const char *source = crib_json_str(m, "source");
  if (!source || !*source) return crib_fail(err, 0, "bind mount without a source");
  char srcbuf[PATH_MAX * 2];
  if (source[0] != '/') {
    snprintf(srcbuf, sizeof srcbuf, "%s/%s", bundle, source);
    source = srcbuf;
  }
  if (!idmapped) return clone_with_options(source, &o, root_prop, dest, err);
  /* Consecutive mounts with the same mapping share one user namespace. */
  json_t *key = json_pack("[O,O]", uids, gids);
  if (!key) return crib_fail(err, ENOMEM, "mapping key");
  if (*userns < 0 || !json_equal(key, *userns_key)) {
    if (*userns >= 0) close(*userns);
    json_decref(*userns_key);
    *userns_key = NULL;
    *userns = userns_with_maps(uids, gids, dest, err);
    if (*userns < 0) {
      json_decref(key);
      return -1;
    }
    *userns_key = key;
  } else {
    json_decref(key);
  }
  int mfd = clone_with_options(source, &o, root_prop, dest, err);
  if (mfd < 0) return -1;
  struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (unsigned long long)*userns};
  if (mount_setattr(mfd, "", AT_EMPTY_PATH | (o.recursive ? AT_RECURSIVE : 0), &attr, sizeof attr) < 0) {
    int e = errno;
    close(mfd);
    if (e == EINVAL || e == EPERM || e == EOPNOTSUPP)
      return crib_fail(err, e, "the filesystem of `%s` (or one mounted below it) does not support idmapped "
                       "mounts: mount_setattr MOUNT_ATTR_IDMAP", source);
    return crib_fail(err, e, "mount_setattr MOUNT_ATTR_IDMAP on `%s`", source);
  }
  return mfd;
}

int crib_premounts_prepare(json_t *spec, const char *bundle, bool all_binds, unsigned long root_prop, crib_premounts *out,
                           crib_err *err) {
  json_t *mounts = json_object_get(spec, "mounts");
  out->n = json_array_size(mounts);
  out->fd = NULL;
  bool any = false;
  size_t i;
  json_t *m;
  json_array_foreach(mounts, i, m) any = any || crib_mount_is_idmapped(m) || (all_binds && is_bind(m));
  if (!any) return 0;
  out->fd = malloc(out->n * sizeof *out->fd);
  if (!out->fd) return crib_fail(err, ENOMEM, "idmapped mounts");
  for (i = 0; i < out->n; i++) out->fd[i] = -1;
  int userns = -1;
  json_t *key = NULL;
  int rc = 0;
  json_array_foreach(mounts, i, m) {
    if (!crib_mount_is_idmapped(m) && !(all_binds && is_bind(m))) continue;
    const char *dest = crib_json_str(m, "destination");
    out->fd[i] = build_one(m, bundle, dest ? dest : "", root_prop, &userns, &key, err);
    if (out->fd[i] < 0) {
      rc = crib_err_wrap(err, "mounts[%zu] (%s)", i, dest ? dest : "");
      break;
    }
  }
  if (userns >= 0) close(userns);
  json_decref(key);
  if (rc < 0) crib_premounts_close(out);
  return rc;
}

void crib_premounts_close(crib_premounts *p) {
  if (p->fd) {
    for (size_t i = 0; i < p->n; i++)
      if (p->fd[i] >= 0) close(p->fd[i]);
    free(p->fd);
  }
  p->fd = NULL;
  p->n = 0;
}
