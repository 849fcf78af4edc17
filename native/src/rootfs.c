#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "mount-fd.h"
#include "mount-template.h"
#include "mounts.h"
#include "root-path.h"
#include "rootfs-dev.h"
#include "spec.h"

static int set_root_propagation(unsigned long flag, crib_err *err) {
  /* Slave by default: our mounts never propagate back to the host, and when setup fails they
   * vanish with the mount namespace. */
  if (mount(NULL, "/", NULL, flag, NULL) < 0)
    return crib_fail(err, errno, "set the propagation of / (linux.rootfsPropagation)");
  return 0;
}

/* pivot_root refuses a shared parent mount: make the mount holding the rootfs private. */
static void make_parent_private(const char *rootfs) {
  /* The rootfs is often a mount point itself (an overlay): that is the mount to change. */
  if (mount(NULL, rootfs, NULL, MS_PRIVATE, NULL) == 0) return;
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", rootfs);
  for (;;) {
    char *slash = strrchr(dir, '/');
    if (!slash) return;
    if (slash == dir) slash[1] = '\0';
    else *slash = '\0';
    if (mount(NULL, dir, NULL, MS_PRIVATE, NULL) == 0 || strcmp(dir, "/") == 0) return;
  }
}

static int do_pivot(int rootfd, const char *rootfs, bool no_pivot, crib_err *err) {
  struct statfs sfs;
  if (fstatfs(rootfd, &sfs) < 0) return crib_fail(err, errno, "statfs `%s`", rootfs);
  if (fchdir(rootfd) < 0) return crib_fail(err, errno, "chdir `%s`", rootfs);
  /* pivot_root cannot move the initial ramfs: only then (or when asked) use MS_MOVE + chroot. */
  if (no_pivot || sfs.f_type == RAMFS_MAGIC) {
    if (mount(".", "/", NULL, MS_MOVE, NULL) < 0) return crib_fail(err, errno, "move `%s` to /", rootfs);
    if (chroot(".") < 0) return crib_fail(err, errno, "chroot `%s`", rootfs);
    if (chdir("/") < 0) return crib_fail(err, errno, "chdir /");
    return 0;
  }
  int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0) return crib_fail(err, errno, "open /");
  int rc = 0;
  /* pivot_root(".", ".") stacks the old root on top of the new one; detaching it from there
   * avoids needing a directory for it inside the image. */
  if (syscall(SYS_pivot_root, ".", ".") < 0) rc = crib_fail(err, errno, "pivot_root `%s`", rootfs);
  else if (fchdir(oldroot) < 0) rc = crib_fail(err, errno, "chdir old root");
  else if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) rc = crib_fail(err, errno, "make old root rslave");
  else if (umount2(".", MNT_DETACH) < 0) rc = crib_fail(err, errno, "detach old root");
  else if (chdir("/") < 0) rc = crib_fail(err, errno, "chdir /");
  close(oldroot);
  return rc;
}

/* The rootfs as a mount of its own (pivot_root needs one), opened as c->rootfd. */
static int mount_rootfs(crib_rootfs_cfg *c, unsigned long prop, crib_err *err) {
  if (c->rootfs_mfd >= 0) {
    /* In a user namespace: our cwd is the rootfs dir (entered as host root); the clone made
     * then goes on top of it, and from then on names the attached mount. In the template: on
     * its empty directory. */
    const char *target = c->in_template ? CRIB_MOUNT_TEMPLATE_ROOTFS : ".";
    if (prop & MS_SHARED) (void)mount(NULL, target, NULL, MS_PRIVATE, NULL);
    int mfd = c->rootfs_mfd;
    c->rootfs_mfd = -1;
    if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
      int e = errno;
      close(mfd);
      return crib_fail(err, e, "attach the rootfs `%s`", c->rootfs);
    }
    c->rootfd = mfd;
    return 0;
  }
  /* With shared root propagation the self-bind below would be shared too, and pivot_root
   * refuses a shared mount: make the rootfs' mount private first (runc's order). */
  if (prop & MS_SHARED) make_parent_private(c->rootfs);
  if (mount(c->rootfs, c->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
    return crib_fail(err, errno, "bind rootfs `%s`", c->rootfs);
  c->rootfd = open(c->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (c->rootfd < 0) return crib_fail(err, errno, "open rootfs `%s`", c->rootfs);
  return 0;
}

int crib_rootfs_clone(const char *rootfs, unsigned long prop, crib_err *err) {
  int mfd = crib_mnt_clone(AT_FDCWD, rootfs, true, "rootfs", err);
  if (mfd < 0) return -1;
  /* A copy made as host root keeps its source's peer group: on a host whose mounts are shared
   * (systemd's), every mount made in the container would reach the host's, and pivot_root
   * refuses a shared root. Like the self-bind of the other path, the root itself is private
   * even when it is to share what is below it. */
  if (crib_mnt_propagate(mfd, prop, "rootfs", err) < 0 ||
      ((prop & MS_SHARED) && crib_mnt_propagate(mfd, MS_PRIVATE, "rootfs", err) < 0)) {
    close(mfd);
    return -1;
  }
  return mfd;
}

int crib_rootfs_build(crib_rootfs_cfg *c, crib_err *err) {
  unsigned long prop = c->root_prop;
  if (!c->in_template && set_root_propagation(prop, err) < 0) return -1;
  /* The rootfs must be a mount point for pivot_root. */
  if (mount_rootfs(c, prop, err) < 0) return -1;
  int rootfd = c->rootfd;
  crib_mount_env env = {.bundle = c->bundle, .cgroup_path = c->cgroup_path, .cgroup_v2 = c->cgroup_v2,
                        .proc_pidns = c->proc_pidns, .pre = c->pre, .v1 = c->v1, .root_prop = prop,
                        .mount_label = c->mount_label, .host_sys = c->host_sys};
  bool dev_is_bind = false;
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(c->spec, "mounts"), i, m) {
    if (crib_mount_entry(rootfd, m, i, &env, err) < 0) return -1;
    const char *dest = crib_json_str(m, "destination");
    if (strcmp(dest, "/dev") == 0 || strcmp(dest, "/dev/") == 0) {
      crib_mount_opts o;
      crib_err ignored;
      crib_mount_parse_options(json_object_get(m, "options"), &o, &ignored);
      const char *type = crib_json_str(m, "type");
      dev_is_bind = o.bind || (type && strcmp(type, "bind") == 0);
    }
  }
  /* A /dev bound from the host already has its nodes. */
  if (!dev_is_bind && (crib_dev_default_mounts(rootfd, c->spec, err) < 0 ||
                       crib_dev_nodes(rootfd, c->spec, c->userns, c->host_nodes, err) < 0))
    return -1;
  return 0;
}

int crib_rootfs_pivot(crib_rootfs_cfg *c, crib_err *err) {
  int rc = do_pivot(c->rootfd, c->rootfs, c->no_pivot, err);
  close(c->rootfd);
  c->rootfd = -1;
  return rc;
}

/* The container's /dev/null, which masks files: opened on a plain path and checked, on the fd
 * that is then copied for each mask, to be the null device. In a container whose /dev is a
 * volume, another container can swap /dev/null for a link to something sensitive such as
 * /proc/sys/kernel/core_pattern, and masking with that would expose it writable (the
 * CVE-2025-31133 class). */
static int open_null(int root, crib_err *err) {
  int fd = crib_root_open(root, "/dev/null", O_PATH | O_NOFOLLOW, true, err);
  if (fd < 0) return -1;
  struct stat sb;
  if (fstat(fd, &sb) < 0) {
    int e = errno;
    close(fd);
    return crib_fail(err, e, "fstat /dev/null");
  }
  if (!S_ISCHR(sb.st_mode) || sb.st_rdev != makedev(1, 3)) {
    close(fd);
    char dev[32] = "";
    if (S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode))
      snprintf(dev, sizeof dev, " %u:%u", major(sb.st_rdev), minor(sb.st_rdev));
    return crib_fail(err, 0, "/dev/null in the container is a %s%s, not the null device "
                     "(character 1:3): refusing to mask with it", crib_file_kind(sb.st_mode), dev);
  }
  return fd;
}

/* A masked path is covered where it is: its parents are resolved inside the root, but a symlink
 * at the end is masked itself, never what it points to. Directories get an empty read-only
 * tmpfs, anything else a copy of the checked /dev/null (*null is opened at the first file). */
static int mask_path(int root, int *null, const char *path, crib_err *err) {
  int target = crib_root_open(root, path, O_PATH | O_NOFOLLOW, false, err);
  if (target < 0) return err->errnum == ENOENT ? 0 : crib_err_wrap(err, "maskedPaths `%s`", path);
  struct stat sb;
  int m = -1;
  if (fstat(target, &sb) < 0) {
    crib_fail(err, errno, "fstat `%s`", path);
  } else if (S_ISDIR(sb.st_mode)) {
    m = crib_mnt_new("tmpfs", "tmpfs", NULL, MS_RDONLY, path, err);
  } else if (*null >= 0 || (*null = open_null(root, err)) >= 0) {
    m = crib_mnt_clone(*null, "", false, path, err);
  }
  int rc = m < 0 ? -1 : crib_mnt_attach(m, target, path, err);
  if (m >= 0) close(m);
  close(target);
  return rc < 0 ? crib_err_wrap(err, "maskedPaths `%s`", path) : 0;
}

/* A read-only path is a read-only copy of itself (and of the mounts below it), made from and
 * attached onto the one fd opened for it, so both ends are the same object. */
static int readonly_path(int root, const char *path, crib_err *err) {
  int target = crib_root_open(root, path, O_PATH, false, err);
  if (target < 0) return err->errnum == ENOENT ? 0 : crib_err_wrap(err, "readonlyPaths `%s`", path);
  int m = crib_mnt_clone(target, "", true, path, err);
  int rc = m < 0 ? -1 : crib_mnt_restrict(m, MS_RDONLY, true, path, err);
  if (rc == 0) rc = crib_mnt_attach(m, target, path, err);
  if (m >= 0) close(m);
  close(target);
  return rc < 0 ? crib_err_wrap(err, "readonlyPaths `%s`", path) : 0;
}

int crib_rootfs_finish(const crib_rootfs_cfg *c, crib_err *err) {
  json_t *linux_ = json_object_get(c->spec, "linux");
  int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return crib_fail(err, errno, "open /");
  int rc = 0, null = -1;
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(linux_, "maskedPaths"), i, v) {
    if (rc == 0) rc = mask_path(root, &null, json_string_value(v), err);
  }
  if (null >= 0) close(null);
  json_array_foreach(json_object_get(linux_, "readonlyPaths"), i, v) {
    if (rc == 0) rc = readonly_path(root, json_string_value(v), err);
  }
  if (rc == 0 && crib_json_bool(json_object_get(c->spec, "root"), "readonly", false) &&
      crib_mnt_restrict(root, MS_RDONLY, false, "/", err) < 0)
    rc = crib_err_wrap(err, "root.readonly");
  close(root);
  /* pivot_root refuses a shared root, so the root was built private: a shared or unbindable
   * rootfsPropagation is given to it last, as runc now does too (masks and read-only paths
   * are copies, which an unbindable mount refuses). Shared here means new peer groups among the
   * container's own mounts, none of them the host's: what was private stays cut off from the
   * host, and what was a slave still only receives. */
  if (rc == 0 && (c->root_prop & (MS_SHARED | MS_UNBINDABLE)) && mount(NULL, "/", NULL, c->root_prop, NULL) < 0)
    rc = crib_fail(err, errno, "give / its propagation (linux.rootfsPropagation)");
  return rc;
}
