#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "crib-io.h"

#define PROC_ROOT_INO 1 /* fs/proc/root.c: the root of every procfs instance */

/* Beneath the handle, nothing but real procfs entries: no symlink (not even "self": it is read
 * with readlinkat instead), no magic link, no other mount. */
#define STRICT (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)

static int on_procfs(int fd, const char *what, crib_err *err) {
  struct statfs s;
  if (fstatfs(fd, &s) < 0) return crib_fail(err, errno, "procfs: fstatfs `%s`", what);
  if (s.f_type != PROC_SUPER_MAGIC)
    return crib_fail(err, 0, "procfs: `%s` is not on procfs (filesystem magic 0x%lx)", what,
                     (unsigned long)s.f_type);
  return 0;
}

static int new_instance(void) {
  int fs = fsopen("proc", FSOPEN_CLOEXEC);
  if (fs < 0) return -1;
  int m = -1;
  if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
    m = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  int e = errno;
  close(fs);
  errno = e;
  return m;
}

static int copy_of_proc(void) {
  int m = open_tree(AT_FDCWD, "/proc", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  /* In a user namespace the kernel will not copy /proc without the mounts locked on top of it;
   * taking them along is harmless, as lookups never cross into another mount (STRICT). */
  if (m < 0 && errno == EINVAL)
    m = open_tree(AT_FDCWD, "/proc", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  return m;
}

/* m (taken) if it is the root of a procfs; -1 otherwise (closed). */
static int checked_root(int m, crib_err *err) {
  struct stat sb;
  if (on_procfs(m, "/proc", err) < 0) {
    close(m);
    return -1;
  }
  if (fstat(m, &sb) < 0) {
    int e = errno;
    close(m);
    return crib_fail(err, e, "procfs: fstat `/proc`");
  }
  if (sb.st_ino != PROC_ROOT_INO) {
    close(m);
    return crib_fail(err, 0, "procfs: `/proc` is not the root of a procfs (inode %llu)",
                     (unsigned long long)sb.st_ino);
  }
  return m;
}

int crib_procfs_copy(crib_err *err) {
  int m = copy_of_proc();
  if (m < 0) return crib_fail(err, errno, "procfs: open_tree `/proc`");
  return checked_root(m, err);
}

int crib_procfs_open_from(int *copy, crib_err *err) {
  int m = new_instance();
  if (m < 0) {
    /* A user namespace that does not own the pid namespace may not make a procfs. */
    int fs_errno = errno;
    if (copy && *copy >= 0) {
      m = *copy;
      *copy = -1;
    } else {
      m = copy_of_proc();
      if (m < 0)
        return crib_fail(err, errno, "procfs: fsopen(\"proc\") failed (%s), and so did open_tree `/proc`",
                         strerror(fs_errno));
    }
  }
  return checked_root(m, err);
}

int crib_procfs_open(crib_err *err) {
  return crib_procfs_open_from(NULL, err);
}

/* rel with a leading "self/" or "thread-self/" replaced by what that link says in this procfs
 * ("<pid>" or "<pid>/task/<tid>"): the handle is ours, so reading the link is trustworthy. */
static int expand_self(int proc, const char *rel, char *out, size_t n, crib_err *err) {
  const char *link = NULL, *rest = rel;
  if (strncmp(rel, "self/", 5) == 0) {
    link = "self";
    rest = rel + 5;
  } else if (strncmp(rel, "thread-self/", 12) == 0) {
    link = "thread-self";
    rest = rel + 12;
  }
  if (!link) {
    if ((size_t)snprintf(out, n, "%s", rel) >= n) return crib_fail(err, ENAMETOOLONG, "procfs: `%s`", rel);
    return 0;
  }
  char target[64];
  ssize_t len = readlinkat(proc, link, target, sizeof target - 1);
  if (len < 0) return crib_fail(err, errno, "procfs: readlink `/proc/%s`", link);
  target[len] = '\0';
  if ((size_t)snprintf(out, n, "%s/%s", target, rest) >= n)
    return crib_fail(err, ENAMETOOLONG, "procfs: `%s`", rel);
  return 0;
}

static int open_strict(int proc, const char *path, int flags) {
  struct open_how how = {.flags = (unsigned long long)(flags | O_CLOEXEC), .resolve = STRICT};
  int fd;
  int tries = 0;
  /* EAGAIN: a rename or mount somewhere raced the lookup; it is safe to retry. */
  do fd = (int)syscall(SYS_openat2, proc, path, &how, sizeof how);
  while (fd < 0 && errno == EAGAIN && ++tries < 32);
  return fd;
}

int crib_procfs_openat(int proc, const char *rel, int flags, crib_err *err) {
  char path[256];
  if (expand_self(proc, rel, path, sizeof path, err) < 0) return -1;
  int fd = open_strict(proc, path, flags);
  if (fd < 0) {
    if (errno == ELOOP || errno == EXDEV)
      return crib_fail(err, errno, "procfs: `/proc/%s` is not a plain procfs entry (a symlink or "
                       "another mount is in the way)", rel);
    return crib_fail(err, errno, "open `/proc/%s`", rel);
  }
  char what[300];
  snprintf(what, sizeof what, "/proc/%s", rel);
  if (on_procfs(fd, what, err) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int crib_procfs_write(int proc, const char *rel, const char *buf, size_t len, crib_err *err) {
  int fd = crib_procfs_openat(proc, rel, O_WRONLY, err);
  if (fd < 0) return -1;
  if (crib_write_all(fd, buf, len) < 0) {
    int e = errno;
    close(fd);
    return crib_fail(err, e, "write `/proc/%s`", rel);
  }
  if (close(fd) < 0) return crib_fail(err, errno, "close `/proc/%s`", rel);
  return 0;
}

int crib_procfs_read(int proc, const char *rel, char *buf, size_t cap, crib_err *err) {
  int fd = crib_procfs_openat(proc, rel, O_RDONLY, err);
  if (fd < 0) return -1;
  size_t off = 0;
  while (off + 1 < cap) {
    ssize_t n = read(fd, buf + off, cap - 1 - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return crib_fail(err, e, "read `/proc/%s`", rel);
    }
    if (n == 0) break;
    off += (size_t)n;
  }
  close(fd);
  buf[off] = '\0';
  return 0;
}

bool crib_procfs_exists(int proc, const char *rel) {
  crib_err ignored;
  int fd = crib_procfs_openat(proc, rel, O_PATH, &ignored);
  if (fd < 0) return false;
  close(fd);
  return true;
}

int crib_procfs_reopen(int proc, int fd, int flags, crib_err *err) {
  int dir = crib_procfs_openat(proc, "thread-self/fd", O_PATH | O_DIRECTORY, err);
  if (dir < 0) return -1;
  char name[16];
  snprintf(name, sizeof name, "%d", fd);
  /* The one link followed: our own fd's magic link, in our own procfs. */
  int r = openat(dir, name, flags | O_CLOEXEC);
  int e = errno;
  close(dir);
  if (r < 0) return crib_fail(err, e, "procfs: reopen fd %d", fd);
  struct stat a, b;
  if (fstat(fd, &a) < 0 || fstat(r, &b) < 0) {
    e = errno;
    close(r);
    return crib_fail(err, e, "procfs: fstat reopened fd %d", fd);
  }
  if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
    close(r);
    return crib_fail(err, 0, "procfs: reopening fd %d gave a different file", fd);
  }
  return r;
}

bool crib_procfs_pidns_supported(int pidns_fd) {
  int fs = fsopen("proc", FSOPEN_CLOEXEC);
  if (fs < 0) return false;
  bool ok = fsconfig(fs, FSCONFIG_SET_FD, "pidns", NULL, pidns_fd) == 0;
  close(fs);
  return ok;
}
