#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "mounts.h"
#include "spec.h"

static const struct {
  const char *path;
  unsigned maj, min;
} default_devices[] = {
    {"/dev/null", 1, 3},    {"/dev/zero", 1, 5},    {"/dev/full", 1, 7},
    {"/dev/random", 1, 8},  {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
};

static int set_root_propagation(const crib_rootfs_cfg *c, crib_err *err) {
  const char *p = crib_json_str(json_object_get(c->spec, "linux"), "rootfsPropagation");
  unsigned long flag = MS_SLAVE | MS_REC;
  if (p && *p) {
    flag = crib_mount_propagation(p);
    if (!flag) return crib_fail(err, 0, "linux.rootfsPropagation: unknown value `%s`", p);
  }
  /* Slave by default: our mounts never propagate back to the host, and when setup fails they
   * vanish with the mount namespace. */
  if (mount(NULL, "/", NULL, flag, NULL) < 0) return crib_fail(err, errno, "make / %s", p ? p : "rslave");
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

static int make_device(int rootfd, const char *path, char type, unsigned maj, unsigned min,
                       mode_t mode, uid_t uid, gid_t gid, bool userns, crib_err *err) {
  char rel[PATH_MAX];
  snprintf(rel, sizeof rel, "%s", path);
  char *slash = strrchr(rel, '/');
  if (!slash || !slash[1]) return crib_fail(err, 0, "device path `%s` is not a file path", path);
  *slash = '\0';
  if (crib_mkdir_in_root(rootfd, rel[0] ? rel : "/", false, err) < 0) return -1;
  int parent = crib_open_in_root(rootfd, rel[0] ? rel : "/", err);
  if (parent < 0) return -1;
  const char *base = slash + 1;
  int rc = 0;
  if (userns) {
    /* mknod is refused in a user namespace: bind the host's node instead. */
    int f = openat(parent, base, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (f < 0 && errno != EEXIST) {
      rc = crib_fail(err, errno, "create `%s`", path);
    } else {
      if (f >= 0) close(f);
      int t = openat(parent, base, O_PATH | O_CLOEXEC | O_NOFOLLOW);
      if (t < 0) {
        rc = crib_fail(err, errno, "open `%s`", path);
      } else {
        char target[64];
        snprintf(target, sizeof target, "/proc/self/fd/%d", t);
        if (mount(path, target, NULL, MS_BIND, NULL) < 0)
          rc = crib_fail(err, errno, "bind device `%s`", path);
        close(t);
      }
    }
  } else {
    mode_t kind = type == 'b' ? S_IFBLK : type == 'p' ? S_IFIFO : S_IFCHR;
    if (mknodat(parent, base, kind | (mode & 07777), makedev(maj, min)) < 0) {
      if (errno != EEXIST) rc = crib_fail(err, errno, "mknod `%s`", path);
    } else if (fchownat(parent, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
      rc = crib_fail(err, errno, "chown `%s`", path);
    } else if (fchmodat(parent, base, mode & 07777, 0) < 0) {
      rc = crib_fail(err, errno, "chmod `%s`", path); /* the umask trimmed mknod's mode */
    }
  }
  close(parent);
  return rc;
}

static int setup_dev(int rootfd, const crib_rootfs_cfg *c, crib_err *err) {
  for (size_t i = 0; i < sizeof default_devices / sizeof default_devices[0]; i++)
    if (make_device(rootfd, default_devices[i].path, 'c', default_devices[i].maj,
                    default_devices[i].min, 0666, 0, 0, c->userns, err) < 0)
      return -1;
  size_t i;
  json_t *d;
  json_array_foreach(json_object_get(json_object_get(c->spec, "linux"), "devices"), i, d) {
    const char *path = crib_json_str(d, "path"), *type = crib_json_str(d, "type");
    if (!path || path[0] != '/' || !type || strchr("cbup", type[0]) == NULL || type[1])
      return crib_fail(err, 0, "linux.devices[%zu]: needs an absolute path and type c|b|u|p", i);
    if (make_device(rootfd, path, type[0] == 'u' ? 'c' : type[0],
                    (unsigned)crib_json_int(d, "major", 0), (unsigned)crib_json_int(d, "minor", 0),
                    (mode_t)crib_json_int(d, "fileMode", 0666), (uid_t)crib_json_int(d, "uid", 0),
                    (gid_t)crib_json_int(d, "gid", 0), c->userns, err) < 0)
      return crib_err_wrap(err, "linux.devices[%zu]", i);
  }
  int dev = crib_open_in_root(rootfd, "/dev", err);
  if (dev < 0) return -1;
  static const char *links[][2] = {{"/proc/self/fd", "fd"},   {"/proc/self/fd/0", "stdin"},
                                   {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}};
  int rc = 0;
  for (size_t k = 0; k < 4 && rc == 0; k++)
    if (symlinkat(links[k][0], dev, links[k][1]) < 0 && errno != EEXIST)
      rc = crib_fail(err, errno, "symlink /dev/%s", links[k][1]);
  /* /dev/ptmx must be the container's devpts multiplexer, not the host's. */
  if (rc == 0 && unlinkat(dev, "ptmx", 0) < 0 && errno != ENOENT)
    rc = crib_fail(err, errno, "remove /dev/ptmx");
  if (rc == 0 && symlinkat("pts/ptmx", dev, "ptmx") < 0)
    rc = crib_fail(err, errno, "symlink /dev/ptmx");
  close(dev);
  return rc;
}

/* Every container gets its own devpts (so /dev/ptmx works) and a /dev/shm, even when the
 * spec's mounts forget them. */
static int default_dev_mounts(int rootfd, const crib_rootfs_cfg *c, crib_err *err) {
  static const struct {
    const char *dest, *type, *source, *data;
    unsigned long flags;
  } defaults[] = {
      {"/dev/pts", "devpts", "devpts", "newinstance,ptmxmode=0666,mode=0620", MS_NOSUID | MS_NOEXEC},
      {"/dev/shm", "tmpfs", "shm", "mode=1777,size=65536k", MS_NOSUID | MS_NODEV | MS_NOEXEC},
  };
  for (size_t k = 0; k < sizeof defaults / sizeof defaults[0]; k++) {
    bool given = false;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(c->spec, "mounts"), i, m) {
      if (strcmp(crib_json_str(m, "destination"), defaults[k].dest) == 0) given = true;
    }
    if (given) continue;
    if (crib_mkdir_in_root(rootfd, defaults[k].dest, false, err) < 0) return -1;
    int fd = crib_open_in_root(rootfd, defaults[k].dest, err);
    if (fd < 0) return -1;
    char target[64];
    snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
    int rc = mount(defaults[k].source, target, defaults[k].type, defaults[k].flags, defaults[k].data);
    int e = errno;
    close(fd);
    if (rc < 0) return crib_fail(err, e, "mount %s on `%s`", defaults[k].type, defaults[k].dest);
  }
  return 0;
}

static int do_pivot(const char *rootfs, bool no_pivot, crib_err *err) {
  struct statfs sfs;
  if (statfs(rootfs, &sfs) < 0) return crib_fail(err, errno, "statfs `%s`", rootfs);
  /* pivot_root cannot move the initial ramfs: only then (or when asked) use MS_MOVE + chroot. */
  if (no_pivot || sfs.f_type == RAMFS_MAGIC) {
    if (chdir(rootfs) < 0) return crib_fail(err, errno, "chdir `%s`", rootfs);
    if (mount(rootfs, "/", NULL, MS_MOVE, NULL) < 0) return crib_fail(err, errno, "move `%s` to /", rootfs);
    if (chroot(".") < 0) return crib_fail(err, errno, "chroot `%s`", rootfs);
    if (chdir("/") < 0) return crib_fail(err, errno, "chdir /");
    return 0;
  }
  int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0) return crib_fail(err, errno, "open /");
  int newroot = open(rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (newroot < 0) {
    int e = errno;
    close(oldroot);
    return crib_fail(err, e, "open `%s`", rootfs);
  }
  int rc = 0;
  /* pivot_root(".", ".") stacks the old root on top of the new one; detaching it from there
   * avoids needing a directory for it inside the image. */
  if (fchdir(newroot) < 0) rc = crib_fail(err, errno, "chdir `%s`", rootfs);
  else if (syscall(SYS_pivot_root, ".", ".") < 0) rc = crib_fail(err, errno, "pivot_root `%s`", rootfs);
  else if (fchdir(oldroot) < 0) rc = crib_fail(err, errno, "chdir old root");
  else if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) rc = crib_fail(err, errno, "make old root rslave");
  else if (umount2(".", MNT_DETACH) < 0) rc = crib_fail(err, errno, "detach old root");
  else if (chdir("/") < 0) rc = crib_fail(err, errno, "chdir /");
  close(oldroot);
  close(newroot);
  return rc;
}

int crib_rootfs_build(const crib_rootfs_cfg *c, crib_err *err) {
  if (set_root_propagation(c, err) < 0) return -1;
  unsigned long prop = MS_SLAVE;
  const char *p = crib_json_str(json_object_get(c->spec, "linux"), "rootfsPropagation");
  if (p) prop = crib_mount_propagation(p);
  /* With shared root propagation the self-bind below would be shared too, and pivot_root
   * refuses a shared mount: make the rootfs' mount private first (runc's order). */
  if (prop & MS_SHARED) make_parent_private(c->rootfs);
  /* The rootfs must be a mount point for pivot_root. */
  if (mount(c->rootfs, c->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
    return crib_fail(err, errno, "bind rootfs `%s`", c->rootfs);
  int rootfd = open(c->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return crib_fail(err, errno, "open rootfs `%s`", c->rootfs);
  crib_mount_env env = {.bundle = c->bundle, .userns = c->userns, .cgroup_path = c->cgroup_path,
                        .cgroup_v2 = c->cgroup_v2};
  bool dev_is_bind = false;
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(c->spec, "mounts"), i, m) {
    if (crib_mount_entry(rootfd, m, i, &env, err) < 0) {
      close(rootfd);
      return -1;
    }
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
  if (!dev_is_bind && (default_dev_mounts(rootfd, c, err) < 0 || setup_dev(rootfd, c, err) < 0)) {
    close(rootfd);
    return -1;
  }
  close(rootfd);
  return 0;
}

int crib_rootfs_pivot(const crib_rootfs_cfg *c, crib_err *err) {
  return do_pivot(c->rootfs, c->no_pivot, err);
}

int crib_rootfs_console(const char *slave_path, crib_err *err) {
  int f = open("/dev/console", O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (f < 0 && errno != EEXIST) return crib_fail(err, errno, "create /dev/console");
  if (f >= 0) close(f);
  if (mount(slave_path, "/dev/console", NULL, MS_BIND, NULL) < 0)
    return crib_fail(err, errno, "bind `%s` on /dev/console", slave_path);
  return 0;
}

static int mask_path(const char *path, crib_err *err) {
  struct stat sb;
  if (stat(path, &sb) < 0) {
    if (errno == ENOENT) return 0;
    return crib_fail(err, errno, "maskedPaths: stat `%s`", path);
  }
  if (S_ISDIR(sb.st_mode)) {
    if (mount("tmpfs", path, "tmpfs", MS_RDONLY, NULL) < 0)
      return crib_fail(err, errno, "maskedPaths: mount empty tmpfs on `%s`", path);
  } else if (mount("/dev/null", path, NULL, MS_BIND, NULL) < 0) {
    return crib_fail(err, errno, "maskedPaths: bind /dev/null on `%s`", path);
  }
  return 0;
}

static int readonly_path(const char *path, bool userns, crib_err *err) {
  if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
    if (errno == ENOENT) return 0;
    return crib_fail(err, errno, "readonlyPaths: bind `%s`", path);
  }
  if (crib_remount_bind(path, MS_RDONLY, userns, err) < 0)
    return crib_err_wrap(err, "readonlyPaths");
  return 0;
}

int crib_rootfs_finish(const crib_rootfs_cfg *c, crib_err *err) {
  json_t *linux_ = json_object_get(c->spec, "linux");
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(linux_, "maskedPaths"), i, v)
    if (mask_path(json_string_value(v), err) < 0) return -1;
  json_array_foreach(json_object_get(linux_, "readonlyPaths"), i, v)
    if (readonly_path(json_string_value(v), c->userns, err) < 0) return -1;
  if (crib_json_bool(json_object_get(c->spec, "root"), "readonly", false)) {
    if (crib_remount_bind("/", MS_RDONLY, c->userns, err) < 0)
      return crib_err_wrap(err, "root.readonly");
  }
  return 0;
}
