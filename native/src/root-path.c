#include "root-path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"

const char *crib_file_kind(mode_t mode) {
  switch (mode & S_IFMT) {
  case S_IFDIR: return "directory";
  case S_IFREG: return "regular file";
  case S_IFLNK: return "symlink";
  case S_IFCHR: return "character device";
  case S_IFBLK: return "block device";
  case S_IFIFO: return "fifo";
  case S_IFSOCK: return "socket";
  default: return "file of unknown type";
  }
}

static int open_raw(int rootfd, const char *path, int flags, bool no_symlinks) {
  while (*path == '/') path++;
  struct open_how how = {.flags = (unsigned long long)(flags | O_CLOEXEC),
                         .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS |
                                    (no_symlinks ? RESOLVE_NO_SYMLINKS : 0)};
  int fd, tries = 0;
  /* EAGAIN: a concurrent rename may have moved something across the root; a retry is safe. */
  do fd = (int)syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof how);
  while (fd < 0 && errno == EAGAIN && ++tries < 32);
  return fd;
}

static int open_fail(crib_err *err, int e, const char *path, bool no_symlinks) {
  if (e == ELOOP && no_symlinks)
    return crib_fail(err, e, "`%s` in the rootfs goes through a symlink, which is refused here "
                     "(this must be a plain path inside the container)", path);
  if (e == ELOOP)
    return crib_fail(err, e, "`%s` in the rootfs goes through a magic link or too many symlinks", path);
  return crib_fail(err, e, "open `%s` in the rootfs", path);
}

int crib_root_open(int rootfd, const char *path, int flags, bool no_symlinks, crib_err *err) {
  int fd = open_raw(rootfd, path, flags, no_symlinks);
  if (fd < 0) return open_fail(err, errno, path, no_symlinks);
  return fd;
}

int crib_root_mkdirs(int rootfd, const char *path, bool file, bool no_symlinks, crib_err *err) {
  char buf[PATH_MAX];
  if (!CRIB_FMT(buf, "%s", path)) return crib_fail(err, ENAMETOOLONG, "path `%s`", path);
  size_t len = strlen(buf);
  /* Component by component, each parent reopened from the root: a symlink that appears on the
   * way still resolves inside the root (or is refused). */
  for (size_t i = 1; i <= len; i++) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    char saved = buf[i];
    buf[i] = '\0';
    int fd = open_raw(rootfd, buf, O_PATH, no_symlinks);
    if (fd >= 0) {
      close(fd);
    } else if (errno == ENOENT) {
      char *slash = strrchr(buf, '/');
      *slash = '\0';
      int parent = open_raw(rootfd, buf[0] ? buf : "/", O_PATH | O_DIRECTORY, no_symlinks);
      int e = errno;
      *slash = '/';
      if (parent < 0) return open_fail(err, e, buf, no_symlinks);
      int rc;
      if (saved == '\0' && file) {
        /* O_EXCL: never open (and so never block on) a fifo someone raced into place. */
        rc = openat(parent, slash + 1, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (rc >= 0) close(rc);
      } else {
        rc = mkdirat(parent, slash + 1, 0755);
      }
      e = errno;
      close(parent);
      if (rc < 0 && e != EEXIST) return crib_fail(err, e, "create `%s` in the rootfs", buf);
    } else {
      return open_fail(err, errno, buf, no_symlinks);
    }
    buf[i] = saved;
  }
  return 0;
}

int crib_root_target(int rootfd, const char *path, bool dir, bool no_symlinks, crib_err *err) {
  if (crib_root_mkdirs(rootfd, path, !dir, no_symlinks, err) < 0) return -1;
  int fd = crib_root_open(rootfd, path, O_PATH, no_symlinks, err);
  if (fd < 0) return -1;
  struct stat sb;
  if (fstat(fd, &sb) < 0) {
    int e = errno;
    close(fd);
    return crib_fail(err, e, "fstat `%s` in the rootfs", path);
  }
  /* Checked on the fd that will be mounted onto: whatever raced in before the open is caught. */
  if (dir != S_ISDIR(sb.st_mode)) {
    close(fd);
    return crib_fail(err, 0, "mount target `%s` is a %s, but the source is %s", path,
                     crib_file_kind(sb.st_mode), dir ? "a directory" : "not a directory");
  }
  return fd;
}
