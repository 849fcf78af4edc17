#include "files.h"

#include "crib-atomic-file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int crib_read_file(const char *path, char *buf, size_t cap, size_t *len, crib_err *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return crib_fail(err, errno, "open `%s`", path);
  size_t off = 0;
  while (off + 1 < cap) {
    ssize_t n = read(fd, buf + off, cap - 1 - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      return crib_fail(err, e, "read `%s`", path);
    }
    if (n == 0) break;
    off += (size_t)n;
  }
  close(fd);
  buf[off] = '\0';
  if (len) *len = off;
  return 0;
}

int crib_mkdir_p(const char *path, mode_t mode, crib_err *err) {
  char buf[PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
    return crib_fail(err, ENAMETOOLONG, "mkdir `%s`", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, mode) < 0 && errno != EEXIST) return crib_fail(err, errno, "mkdir `%s`", buf);
    *p = '/';
  }
  if (mkdir(buf, mode) < 0 && errno != EEXIST) return crib_fail(err, errno, "mkdir `%s`", buf);
  return 0;
}

int crib_rm_dir(const char *path, crib_err *err) {
  DIR *d = opendir(path);
  if (!d) {
    if (errno == ENOENT) return 0;
    return crib_fail(err, errno, "opendir `%s`", path);
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
      int e = errno;
      closedir(d);
      return crib_fail(err, e, "unlink `%s/%s`", path, de->d_name);
    }
  }
  closedir(d);
  if (rmdir(path) < 0 && errno != ENOENT) return crib_fail(err, errno, "rmdir `%s`", path);
  return 0;
}

int crib_write_pid_file(const char *path, pid_t pid, crib_err *err) {
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%d", (int)pid);
  /* Atomic so a caller polling the file never reads an empty or partial pid. Not synced: a pid
   * names a process of this boot, and the file is read by the process that asked for it (the
   * monitor) while it runs; after a crash the pid means nothing, whatever the file holds. */
  return crib_atomic_replace_file(path, buf, (size_t)n, 0600, err);
}

static int cmp_int(const void *a, const void *b) {
  return *(const int *)a - *(const int *)b;
}

int crib_close_fds_from(int from, const int *keep, size_t n, crib_err *err) {
  /* close_range needs no /proc (the container may not mount one) and is one syscall per gap
   * between kept fds. */
  /* 256: the talk fds, a container's prepared binds and v1 cgroup clones, and a user-namespaced
   * one's copies of the host's device nodes (container-init.c). */
  if (n > 256) return crib_fail(err, E2BIG, "close fds: %zu fds to keep, at most 256", n);
  int sorted[256];
  if (n > 0) memcpy(sorted, keep, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, cmp_int);
  unsigned lo = (unsigned)from;
  for (size_t i = 0; i < n; i++) {
    if (sorted[i] < (int)lo) continue;
    if ((unsigned)sorted[i] > lo && syscall(SYS_close_range, lo, (unsigned)sorted[i] - 1, 0u) < 0)
      return crib_fail(err, errno, "close_range %u..%d", lo, sorted[i] - 1);
    lo = (unsigned)sorted[i] + 1;
  }
  if (syscall(SYS_close_range, lo, ~0u, 0u) < 0) return crib_fail(err, errno, "close_range %u..", lo);
  return 0;
}
