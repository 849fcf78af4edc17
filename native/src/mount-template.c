#include "mount-template.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "crib-atomic-file.h"
#include "files.h"
#include "mount-fd.h"
#include "namespaces.h"

#define WHAT "the mount template"

typedef struct paths {
  char dir[PATH_MAX], pin[PATH_MAX], lock[PATH_MAX], layout[PATH_MAX];
} paths;

static int paths_of(const char *root, paths *p, crib_err *err) {
  if ((size_t)snprintf(p->dir, sizeof p->dir, "%s/%s", root, CRIB_MOUNT_TEMPLATE_DIR) >= sizeof p->dir ||
      (size_t)snprintf(p->pin, sizeof p->pin, "%s/%s", p->dir, CRIB_MOUNT_TEMPLATE_PIN) >= sizeof p->pin ||
      (size_t)snprintf(p->layout, sizeof p->layout, "%s/%s", p->dir, CRIB_MOUNT_TEMPLATE_LAYOUT_FILE) >= sizeof p->layout ||
      (size_t)snprintf(p->lock, sizeof p->lock, "%s.lock", p->dir) >= sizeof p->lock)
    return crib_fail(err, ENAMETOOLONG, "--root `%s`", root);
  return 0;
}

/* Held while the template is made or removed; other runtimes wait for it. */
static int lock_template(const paths *p, crib_err *err) {
  int fd = open(p->lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return crib_fail(err, errno, "open `%s`", p->lock);
  while (flock(fd, LOCK_EX) < 0) {
    if (errno == EINTR) continue;
    int e = errno;
    close(fd);
    return crib_fail(err, e, "lock `%s`", p->lock);
  }
  return fd;
}

/* Whether the layout file beside the pin names this runtime's layout. */
static bool layout_is_current(const paths *p) {
  char buf[64];
  int fd = open(p->layout, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n < 0) return false;
  buf[n] = '\0';
  return strcmp(buf, CRIB_MOUNT_TEMPLATE_LAYOUT) == 0;
}

int crib_mount_template_open(const char *root, crib_err *err) {
  err->errnum = 0;
  err->msg[0] = '\0';
  paths p;
  if (paths_of(root, &p, err) < 0) return -1;
  int fd = open(p.pin, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return errno == ENOENT ? -1 : crib_fail(err, errno, "open `%s`", p.pin);
  struct statfs sfs;
  int type = -1;
  if (fstatfs(fd, &sfs) < 0) {
    crib_fail(err, errno, "statfs `%s`", p.pin);
  } else if (sfs.f_type != NSFS_MAGIC) {
    crib_fail(err, 0, "`%s` pins no namespace (nothing is mounted on it)", p.pin);
  } else if ((type = ioctl(fd, NS_GET_NSTYPE)) < 0) {
    crib_fail(err, errno, "ioctl NS_GET_NSTYPE `%s`", p.pin);
  } else if (type != CLONE_NEWNS) {
    crib_fail(err, 0, "`%s` pins a namespace that is not a mount namespace (type 0x%x)", p.pin, type);
  } else if (!layout_is_current(&p)) {
    crib_fail(err, 0, "`%s` pins a template of another layout than this crib-runtime's "
              "(`crib-runtime mount-template` makes it anew)", p.pin);
  } else {
    return fd;
  }
  close(fd);
  return -1;
}

static bool is_mount_root(const char *path) {
  struct statx sx;
  return statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, 0, &sx) == 0 &&
         (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* In a child (crib_ns_child_start): a new mount namespace whose only mount is the template's
 * tmpfs, made its root; arg is the directory it is attached on first. */
static int build_template(void *arg, crib_err *e) {
  const char *dir = arg;
  if (unshare(CLONE_NEWNS) < 0) return crib_fail(e, errno, "unshare a mount namespace");
  /* Copies of the host's mounts, made private before they are dropped: nothing done here
   * reaches the host. */
  if (mount(NULL, "/", NULL, MS_PRIVATE | MS_REC, NULL) < 0)
    return crib_fail(e, errno, "make the copied mounts private");
  int m = crib_mnt_new("tmpfs", "tmpfs", "mode=0555,size=4k,nr_inodes=8", MS_NOSUID | MS_NODEV | MS_NOEXEC, WHAT, e);
  if (m < 0) return -1;
  int rc = 0;
  static const char *const dirs[] = {CRIB_MOUNT_TEMPLATE_ROOTFS, CRIB_MOUNT_TEMPLATE_PROC, CRIB_MOUNT_TEMPLATE_SYS};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0] && rc == 0; i++)
    if (mkdirat(m, dirs[i] + 1, 0555) < 0) rc = crib_fail(e, errno, "mkdir `%s` in " WHAT, dirs[i]);
  if (rc == 0 && crib_mnt_restrict(m, MS_RDONLY, false, WHAT, e) < 0) rc = -1;
  if (rc == 0 && move_mount(m, "", AT_FDCWD, dir, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    rc = crib_fail(e, errno, "attach " WHAT " on `%s`", dir);
  close(m);
  if (rc < 0) return -1;
  if (chdir(dir) < 0) return crib_fail(e, errno, "chdir `%s`", dir);
  if (syscall(SYS_pivot_root, ".", ".") < 0) return crib_fail(e, errno, "pivot_root into " WHAT);
  /* pivot_root(".", ".") stacked the old root on the new one: that is what goes. */
  if (umount2(".", MNT_DETACH) < 0) return crib_fail(e, errno, "detach the host's mounts from " WHAT);
  if (chdir("/") < 0) return crib_fail(e, errno, "chdir /");
  return 0;
}

static int make_locked(const paths *p, crib_err *err) {
  if (mkdir(p->dir, 0700) < 0 && errno != EEXIST) return crib_fail(err, errno, "mkdir `%s`", p->dir);
  /* The kernel refuses to copy a mount namespace's file into another namespace: the pin must be
   * on a mount that propagates nowhere. */
  if (!is_mount_root(p->dir) && mount(p->dir, p->dir, NULL, MS_BIND, NULL) < 0)
    return crib_fail(err, errno, "bind `%s` on itself", p->dir);
  if (mount(NULL, p->dir, NULL, MS_PRIVATE, NULL) < 0) return crib_fail(err, errno, "make `%s` private", p->dir);
  /* Whatever was pinned there before (not a mount namespace: crib_mount_template_open refused it). */
  while (umount2(p->pin, MNT_DETACH | UMOUNT_NOFOLLOW) == 0) {
  }
  int f = open(p->pin, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (f < 0) return crib_fail(err, errno, "create `%s`", p->pin);
  close(f);

  int hold;
  pid_t child = crib_ns_child_start(build_template, (void *)p->dir, &hold, err);
  if (child < 0) return -1;
  char ns[64];
  snprintf(ns, sizeof ns, "/proc/%d/ns/mnt", (int)child);
  int rc = 0;
  if (mount(ns, p->pin, NULL, MS_BIND, NULL) < 0) rc = crib_fail(err, errno, "pin " WHAT " on `%s`", p->pin);
  crib_ns_child_release(child, hold);
  /* Written once the pin is there: a template pinned without it (a kill in between) is made anew. */
  if (rc == 0)
    rc = crib_atomic_write_file(p->layout, CRIB_MOUNT_TEMPLATE_LAYOUT, strlen(CRIB_MOUNT_TEMPLATE_LAYOUT), 0600, err);
  return rc;
}

int crib_mount_template_make(const char *root, crib_err *err) {
  paths p;
  if (paths_of(root, &p, err) < 0 || crib_mkdir_p(root, 0700, err) < 0) return -1;
  int lock = lock_template(&p, err);
  if (lock < 0) return -1;
  crib_err probe;
  int fd = crib_mount_template_open(root, &probe);
  int rc = 0;
  if (fd >= 0) close(fd);
  else rc = make_locked(&p, err);
  close(lock);
  return rc < 0 ? crib_err_wrap(err, "make " WHAT " under `%s`", root) : 0;
}

/* The layout file goes first: a template unpinned only halfway is then never used. */
static int unlink_layout(const paths *p, crib_err *err) {
  if (unlink(p->layout) < 0 && errno != ENOENT) return crib_fail(err, errno, "remove `%s`", p->layout);
  return 0;
}

int crib_mount_template_remove(const char *root, crib_err *err) {
  paths p;
  if (paths_of(root, &p, err) < 0) return -1;
  if (access(p.dir, F_OK) < 0 && errno == ENOENT) return 0;
  int lock = lock_template(&p, err);
  if (lock < 0) return -1;
  int rc = unlink_layout(&p, err);
  if (rc == 0) {
    while (umount2(p.pin, MNT_DETACH | UMOUNT_NOFOLLOW) == 0) {
    }
    if (errno != EINVAL && errno != ENOENT) rc = crib_fail(err, errno, "unpin `%s`", p.pin);
    else if (unlink(p.pin) < 0 && errno != ENOENT) rc = crib_fail(err, errno, "remove `%s`", p.pin);
    else if (is_mount_root(p.dir) && umount2(p.dir, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
      rc = crib_fail(err, errno, "unmount `%s`", p.dir);
    else if (rmdir(p.dir) < 0 && errno != ENOENT) rc = crib_fail(err, errno, "remove `%s`", p.dir);
    else if (unlink(p.lock) < 0 && errno != ENOENT) rc = crib_fail(err, errno, "remove `%s`", p.lock);
  }
  close(lock);
  return rc;
}
