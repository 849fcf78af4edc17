#include "mount-fd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

/* Per-mount attributes for the MS_* flags that have one. */
static unsigned long long attrs_of(unsigned long f) {
  unsigned long long a = 0;
  if (f & MS_RDONLY) a |= MOUNT_ATTR_RDONLY;
  if (f & MS_NOSUID) a |= MOUNT_ATTR_NOSUID;
  if (f & MS_NODEV) a |= MOUNT_ATTR_NODEV;
  if (f & MS_NOEXEC) a |= MOUNT_ATTR_NOEXEC;
  if (f & MS_NODIRATIME) a |= MOUNT_ATTR_NODIRATIME;
  if (f & MS_NOATIME) a |= MOUNT_ATTR_NOATIME;
  else if (f & MS_STRICTATIME) a |= MOUNT_ATTR_STRICTATIME;
  /* MS_RELATIME is MOUNT_ATTR_RELATIME, i.e. 0 in the atime field. */
  return a;
}

static bool sets_atime(unsigned long f) {
  return f & (MS_NOATIME | MS_STRICTATIME | MS_RELATIME);
}

/* The filesystem's own words for a refusal ("e tmpfs: Unknown parameter 'bogus'"), from the fs
 * context's log; empty when it logged nothing. */
static void fs_log(int fs, char *out, size_t n) {
  out[0] = '\0';
  char line[256];
  ssize_t len = read(fs, line, sizeof line - 1);
  if (len <= 2) return;
  line[len] = '\0';
  line[strcspn(line, "\n")] = '\0';
  snprintf(out, n, " (%s)", line + 2);
}

static int fs_fail(int fs, crib_err *err, int e, const char *step, const char *fstype, const char *what) {
  char log[300];
  fs_log(fs, log, sizeof log);
  close(fs);
  return crib_fail(err, e, "%s %s for `%s`%s", step, fstype, what, log);
}

/* The next item of a "key=value,flag,..." list, cut in place. A value may be double-quoted to
 * hold commas (an SELinux context="u:r:t:s0:c1,c2"); the quotes are dropped, as the legacy
 * mount(2) option parser drops them: fsconfig takes the value as it is. NULL at the end. */
static char *next_item(char **cursor) {
  char *item = *cursor;
  while (*item == ',') item++;
  if (!*item) return NULL;
  char *w = item, *r = item;
  bool quoted = false;
  for (; *r && (quoted || *r != ','); r++) {
    if (*r == '"') quoted = !quoted;
    else *w++ = *r;
  }
  *cursor = *r ? r + 1 : r;
  *w = '\0';
  return item;
}

/* data is "key=value,flag,...": each item becomes one fsconfig call. */
static int configure(int fs, const char *fstype, const char *data, const char *what, crib_err *err) {
  char buf[4096];
  if ((size_t)snprintf(buf, sizeof buf, "%s", data) >= sizeof buf)
    return crib_fail(err, E2BIG, "mount options for `%s` are too long", what);
  char *cursor = buf;
  for (char *item = next_item(&cursor); item; item = next_item(&cursor)) {
    char *eq = strchr(item, '=');
    int rc;
    if (eq) {
      *eq = '\0';
      rc = fsconfig(fs, FSCONFIG_SET_STRING, item, eq + 1, 0);
    } else {
      rc = fsconfig(fs, FSCONFIG_SET_FLAG, item, NULL, 0);
    }
    if (rc < 0) {
      char log[300];
      fs_log(fs, log, sizeof log);
      return crib_fail(err, errno, "%s option `%s` for `%s`%s", fstype, item, what, log);
    }
  }
  return 0;
}

int crib_mnt_new(const char *fstype, const char *source, const char *data, unsigned long ms_flags,
                 const char *what, crib_err *err) {
  return crib_mnt_new_with_fd(fstype, source, data, ms_flags, NULL, -1, what, err);
}

int crib_mnt_new_with_fd(const char *fstype, const char *source, const char *data, unsigned long ms_flags,
                         const char *fd_key, int fd, const char *what, crib_err *err) {
  int fs = fsopen(fstype, FSOPEN_CLOEXEC);
  if (fs < 0) return crib_fail(err, errno, "fsopen %s for `%s`", fstype, what);
  if (source && *source && fsconfig(fs, FSCONFIG_SET_STRING, "source", source, 0) < 0)
    return fs_fail(fs, err, errno, "source of", fstype, what);
  static const struct {
    unsigned long ms;
    const char *name;
  } sb_flags[] = {{MS_SYNCHRONOUS, "sync"}, {MS_DIRSYNC, "dirsync"}, {MS_MANDLOCK, "mand"}};
  for (size_t i = 0; i < sizeof sb_flags / sizeof sb_flags[0]; i++)
    if ((ms_flags & sb_flags[i].ms) && fsconfig(fs, FSCONFIG_SET_FLAG, sb_flags[i].name, NULL, 0) < 0)
      return fs_fail(fs, err, errno, sb_flags[i].name, fstype, what);
  if (data && *data && configure(fs, fstype, data, what, err) < 0) {
    close(fs);
    return -1;
  }
  if (fd_key && fsconfig(fs, FSCONFIG_SET_FD, fd_key, NULL, fd) < 0) {
    char step[64];
    snprintf(step, sizeof step, "option %s (a file descriptor) of", fd_key);
    return fs_fail(fs, err, errno, step, fstype, what);
  }
  if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return fs_fail(fs, err, errno, "create", fstype, what);
  int m = fsmount(fs, FSMOUNT_CLOEXEC, (unsigned int)attrs_of(ms_flags));
  if (m < 0) return fs_fail(fs, err, errno, "fsmount", fstype, what);
  close(fs);
  return m;
}

int crib_mnt_clone(int dirfd, const char *path, bool recursive, const char *what, crib_err *err) {
  unsigned int flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
  if (!*path) flags |= AT_EMPTY_PATH;
  int m = open_tree(dirfd, path, flags);
  if (m < 0) {
    if (*path) return crib_fail(err, errno, "source `%s`", path);
    return crib_fail(err, errno, "open_tree for `%s`", what);
  }
  return m;
}

int crib_mnt_setattr(int mfd, unsigned long long set, unsigned long long clr, bool recursive,
                     const char *what, crib_err *err) {
  if (!set && !clr) return 0;
  struct mount_attr attr = {.attr_set = set, .attr_clr = clr};
  if (mount_setattr(mfd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr, sizeof attr) < 0)
    return crib_fail(err, errno, "mount_setattr on `%s` (set 0x%llx, clear 0x%llx)", what, set, clr);
  return 0;
}

int crib_mnt_restrict(int mfd, unsigned long ms_flags, bool recursive, const char *what, crib_err *err) {
  /* Only the atime mode is a field that must be cleared to be set; every other bit is added to
   * what the mount already has, so a bind never loses a restriction of its source. */
  unsigned long long clr = sets_atime(ms_flags) ? MOUNT_ATTR__ATIME : 0;
  return crib_mnt_setattr(mfd, attrs_of(ms_flags), clr, recursive, what, err);
}

int crib_mnt_propagate(int mfd, unsigned long ms_propagation, const char *what, crib_err *err) {
  struct mount_attr attr = {.propagation = ms_propagation & ~(unsigned long)MS_REC};
  unsigned int flags = AT_EMPTY_PATH | ((ms_propagation & MS_REC) ? AT_RECURSIVE : 0);
  if (mount_setattr(mfd, "", flags, &attr, sizeof attr) < 0)
    return crib_fail(err, errno, "set propagation of `%s`", what);
  return 0;
}

int crib_mnt_attach(int mfd, int target, const char *what, crib_err *err) {
  if (move_mount(mfd, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return crib_fail(err, errno, "move_mount onto `%s`", what);
  return 0;
}
