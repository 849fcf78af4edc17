#include "mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"
#include "spec.h"

static const struct {
  const char *name;
  bool clear;
  unsigned long flag;
} flag_table[] = {
    {"async", true, MS_SYNCHRONOUS},  {"atime", true, MS_NOATIME},
    {"defaults", false, 0},           {"dev", true, MS_NODEV},
    {"diratime", true, MS_NODIRATIME}, {"dirsync", false, MS_DIRSYNC},
    {"exec", true, MS_NOEXEC},        {"mand", false, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},   {"nodev", false, MS_NODEV},
    {"nodiratime", false, MS_NODIRATIME}, {"noexec", false, MS_NOEXEC},
    {"nomand", true, MS_MANDLOCK},    {"norelatime", true, MS_RELATIME},
    {"nostrictatime", true, MS_STRICTATIME}, {"nosuid", false, MS_NOSUID},
    {"relatime", false, MS_RELATIME}, {"remount", false, MS_REMOUNT},
    {"ro", false, MS_RDONLY},         {"rw", true, MS_RDONLY},
    {"strictatime", false, MS_STRICTATIME}, {"suid", true, MS_NOSUID},
    {"sync", false, MS_SYNCHRONOUS},
};

static const struct {
  const char *name;
  bool clear;
  unsigned long long attr;
} rattr_table[] = {
    {"rro", false, MOUNT_ATTR_RDONLY},        {"rrw", true, MOUNT_ATTR_RDONLY},
    {"rnosuid", false, MOUNT_ATTR_NOSUID},    {"rsuid", true, MOUNT_ATTR_NOSUID},
    {"rnodev", false, MOUNT_ATTR_NODEV},      {"rdev", true, MOUNT_ATTR_NODEV},
    {"rnoexec", false, MOUNT_ATTR_NOEXEC},    {"rexec", true, MOUNT_ATTR_NOEXEC},
    {"rnodiratime", false, MOUNT_ATTR_NODIRATIME}, {"rdiratime", true, MOUNT_ATTR_NODIRATIME},
    {"rnosymfollow", false, MOUNT_ATTR_NOSYMFOLLOW}, {"rsymfollow", true, MOUNT_ATTR_NOSYMFOLLOW},
};

static const struct {
  const char *name;
  unsigned long flag;
} prop_table[] = {
    {"private", MS_PRIVATE},  {"rprivate", MS_PRIVATE | MS_REC},
    {"shared", MS_SHARED},    {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},      {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

unsigned long crib_mount_propagation(const char *name) {
  for (size_t i = 0; i < sizeof prop_table / sizeof prop_table[0]; i++)
    if (strcmp(prop_table[i].name, name) == 0) return prop_table[i].flag;
  return 0;
}

int crib_mount_parse_options(json_t *options, crib_mount_opts *o, crib_err *err) {
  memset(o, 0, sizeof *o);
  size_t i, off = 0;
  json_t *v;
  json_array_foreach(options, i, v) {
    const char *opt = json_string_value(v);
    if (strcmp(opt, "bind") == 0 || strcmp(opt, "rbind") == 0) {
      o->bind = true;
      o->recursive = opt[0] == 'r';
      continue;
    }
    unsigned long prop = crib_mount_propagation(opt);
    if (prop) {
      o->propagation = prop;
      continue;
    }
    bool rattr = false;
    for (size_t k = 0; k < sizeof rattr_table / sizeof rattr_table[0]; k++) {
      if (strcmp(rattr_table[k].name, opt) != 0) continue;
      rattr = true;
      if (rattr_table[k].clear) {
        o->attr_clr |= rattr_table[k].attr;
        o->attr_set &= ~rattr_table[k].attr;
      } else {
        o->attr_set |= rattr_table[k].attr;
        o->attr_clr &= ~rattr_table[k].attr;
      }
    }
    if (rattr) continue;
    bool known = false;
    for (size_t k = 0; k < sizeof flag_table / sizeof flag_table[0]; k++) {
      if (strcmp(flag_table[k].name, opt) != 0) continue;
      known = true;
      if (flag_table[k].clear) {
        o->flags &= ~flag_table[k].flag;
        o->clear |= flag_table[k].flag;
      } else {
        o->flags |= flag_table[k].flag;
        o->clear &= ~flag_table[k].flag;
      }
    }
    /* Runtime-only hints that are not filesystem options. */
    if (known || strcmp(opt, "tmpcopyup") == 0 || strncmp(opt, "x-", 2) == 0) continue;
    int n = snprintf(o->data + off, sizeof o->data - off, "%s%s", off ? "," : "", opt);
    if (n < 0 || (size_t)n >= sizeof o->data - off)
      return crib_fail(err, E2BIG, "mount options too long at `%s`", opt);
    off += (size_t)n;
  }
  return 0;
}

static int open_in_root(int rootfd, const char *path) {
  while (*path == '/') path++;
  struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                         .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  int fd;
  do fd = (int)syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof how);
  while (fd < 0 && errno == EAGAIN);
  return fd;
}

int crib_open_in_root(int rootfd, const char *path, crib_err *err) {
  int fd = open_in_root(rootfd, path);
  if (fd < 0) return crib_fail(err, errno, "open `%s` in rootfs", path);
  return fd;
}

int crib_mkdir_in_root(int rootfd, const char *path, bool file, crib_err *err) {
  char buf[PATH_MAX];
  if (!CRIB_FMT(buf, "%s", path)) return crib_fail(err, ENAMETOOLONG, "path `%s`", path);
  size_t len = strlen(buf);
  /* Walk component by component: each parent is reopened inside the root, so a symlink that
   * appears on the way still resolves under the rootfs. */
  for (size_t i = 1; i <= len; i++) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    char saved = buf[i];
    buf[i] = '\0';
    int fd = open_in_root(rootfd, buf);
    if (fd >= 0) {
      close(fd);
    } else if (errno == ENOENT) {
      char *slash = strrchr(buf, '/');
      *slash = '\0';
      int parent = open_in_root(rootfd, buf[0] ? buf : "/");
      *slash = '/';
      if (parent < 0) return crib_fail(err, errno, "open parent of `%s` in rootfs", buf);
      int rc;
      bool last = saved == '\0';
      if (last && file) {
        rc = openat(parent, slash + 1, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (rc >= 0) close(rc);
      } else {
        rc = mkdirat(parent, slash + 1, 0755);
      }
      int e = errno;
      close(parent);
      if (rc < 0 && e != EEXIST) return crib_fail(err, e, "create `%s` in rootfs", buf);
    } else {
      return crib_fail(err, errno, "open `%s` in rootfs", buf);
    }
    buf[i] = saved;
  }
  return 0;
}

static unsigned long locked_flags(const char *target) {
  struct statvfs s;
  if (statvfs(target, &s) < 0) return 0;
  unsigned long f = 0;
  if (s.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (s.f_flag & ST_NODEV) f |= MS_NODEV;
  if (s.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (s.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (s.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (s.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

int crib_remount_bind(const char *target, unsigned long flags, bool userns, crib_err *err) {
  unsigned long f = MS_BIND | MS_REMOUNT | flags;
  if (userns) f |= locked_flags(target);
  if (mount(NULL, target, NULL, f, NULL) < 0) {
    /* Outside a user namespace the source's flags can still be locked (e.g. nodev from the
     * host): retry keeping them. */
    if (errno != EPERM || userns) return crib_fail(err, errno, "remount `%s`", target);
    if (mount(NULL, target, NULL, f | locked_flags(target), NULL) < 0)
      return crib_fail(err, errno, "remount `%s`", target);
  }
  return 0;
}

/* v1: a tmpfs at the destination with the container's own cgroup directory of each hierarchy
 * bound below it (as runc does); v2: a cgroup2 mount, scoped by the cgroup namespace. The
 * container's directory is <hierarchy mount point><cgroup path>, as the cgroup library made it,
 * so this needs neither /proc/self/cgroup nor the child to be in the cgroup yet. */
static int mount_cgroup(int rootfd, const char *dest, const crib_mount_opts *o,
                        const crib_mount_env *env, crib_err *err) {
  char target[64];
  if (env->cgroup_v2) {
    int fd = crib_open_in_root(rootfd, dest, err);
    if (fd < 0) return -1;
    snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
    int rc = mount("cgroup2", target, "cgroup2", o->flags & ~MS_REMOUNT, NULL);
    int e = errno;
    close(fd);
    if (rc < 0) return crib_fail(err, e, "mount cgroup2 on `%s`", dest);
    return 0;
  }
  int fd = crib_open_in_root(rootfd, dest, err);
  if (fd < 0) return -1;
  snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
  int r = mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755");
  int e = errno;
  close(fd);
  if (r < 0) return crib_fail(err, e, "mount tmpfs on `%s`", dest);
  FILE *mi = fopen("/proc/self/mountinfo", "re");
  if (!mi) return crib_fail(err, errno, "open /proc/self/mountinfo");
  char line[4096];
  int rc = 0;
  while (rc == 0 && fgets(line, sizeof line, mi)) {
    char *sep = strstr(line, " - ");
    if (!sep || (strncmp(sep, " - cgroup ", 10) != 0 && strncmp(sep, " - cgroup2 ", 11) != 0)) continue;
    char mnt[PATH_MAX];
    if (sscanf(line, "%*d %*d %*s %*s %4095s", mnt) != 1) continue;
    if (strncmp(mnt, "/sys/fs/cgroup/", 15) != 0 || strchr(mnt + 15, '/')) continue;
    const char *name = mnt + 15;
    char src[PATH_MAX * 2], sub[PATH_MAX * 2];
    snprintf(src, sizeof src, "%s%s", mnt, env->cgroup_path);
    snprintf(sub, sizeof sub, "%s/%s", dest, name);
    struct stat sb;
    if (stat(src, &sb) < 0) continue; /* the library made no cgroup of ours in this hierarchy */
    if (crib_mkdir_in_root(rootfd, sub, false, err) < 0) { rc = -1; break; }
    int sfd = crib_open_in_root(rootfd, sub, err);
    if (sfd < 0) { rc = -1; break; }
    char starget[64];
    snprintf(starget, sizeof starget, "/proc/self/fd/%d", sfd);
    if (mount(src, starget, NULL, MS_BIND | MS_REC, NULL) < 0) {
      rc = crib_fail(err, errno, "bind cgroup `%s` on `%s`", src, sub);
    } else {
      close(sfd);
      sfd = crib_open_in_root(rootfd, sub, err);
      if (sfd < 0) { rc = -1; break; }
      snprintf(starget, sizeof starget, "/proc/self/fd/%d", sfd);
      rc = crib_remount_bind(starget, (o->flags & MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                             env->userns, err);
    }
    close(sfd);
  }
  fclose(mi);
  if (rc < 0) return -1;
  if (o->flags & MS_RDONLY) {
    fd = crib_open_in_root(rootfd, dest, err);
    if (fd < 0) return -1;
    snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
    r = mount(NULL, target, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755");
    e = errno;
    close(fd);
    if (r < 0) return crib_fail(err, e, "remount `%s` read-only", dest);
  }
  return 0;
}

int crib_mount_entry(int rootfd, json_t *m, size_t i, const crib_mount_env *env, crib_err *err) {
  const char *dest = crib_json_str(m, "destination");
  const char *type = crib_json_str(m, "type");
  const char *source = crib_json_str(m, "source");
  crib_mount_opts o;
  if (crib_mount_parse_options(json_object_get(m, "options"), &o, err) < 0) goto fail;
  if (type && strcmp(type, "bind") == 0) o.bind = true;
  if (!type && !o.bind) {
    crib_fail(err, 0, "no type and not a bind mount");
    goto fail;
  }

  char srcbuf[PATH_MAX * 2];
  if (o.bind) {
    if (!source) {
      crib_fail(err, 0, "bind mount without a source");
      goto fail;
    }
    if (source[0] != '/') {
      snprintf(srcbuf, sizeof srcbuf, "%s/%s", env->bundle, source);
      source = srcbuf;
    }
    struct stat sb;
    if (stat(source, &sb) < 0) {
      crib_fail(err, errno, "source `%s`", source);
      goto fail;
    }
    if (crib_mkdir_in_root(rootfd, dest, !S_ISDIR(sb.st_mode), err) < 0) goto fail;
  } else if (strcmp(type, "cgroup") == 0 || strcmp(type, "cgroup2") == 0) {
    if (crib_mkdir_in_root(rootfd, dest, false, err) < 0) goto fail;
    if (mount_cgroup(rootfd, dest, &o, env, err) < 0) goto fail;
    return 0;
  } else {
    if (crib_mkdir_in_root(rootfd, dest, false, err) < 0) goto fail;
  }

  int fd = crib_open_in_root(rootfd, dest, err);
  if (fd < 0) goto fail;
  char target[64];
  snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
  int rc;
  if (o.bind) {
    rc = mount(source, target, NULL, MS_BIND | (o.recursive ? MS_REC : 0), NULL);
  } else {
    unsigned long f = o.flags & ~MS_REMOUNT;
    rc = mount(source ? source : type, target, type, f, o.data[0] ? o.data : NULL);
    /* sysfs belongs to the network namespace's owner: in a user namespace that joined the
     * host's network, mounting a new one is refused, so bind the host's instead (as runc). */
    if (rc < 0 && errno == EPERM && strcmp(type, "sysfs") == 0)
      rc = mount("/sys", target, NULL, MS_BIND | MS_REC, NULL);
  }
  int e = errno;
  close(fd);
  if (rc < 0) {
    crib_fail(err, e, "mount %s `%s` on `%s`", o.bind ? "bind" : type, source ? source : "", dest);
    goto fail;
  }
  /* Reopen: the old fd names the directory under the new mount, not the mount itself. */
  fd = crib_open_in_root(rootfd, dest, err);
  if (fd < 0) goto fail;
  snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
  unsigned long extra = o.flags & ~(MS_REMOUNT | MS_BIND | MS_REC);
  if (o.bind && extra) {
    if (crib_remount_bind(target, extra, env->userns, err) < 0) {
      close(fd);
      goto fail;
    }
  }
  if (o.attr_set || o.attr_clr) {
    struct mount_attr attr = {.attr_set = o.attr_set, .attr_clr = o.attr_clr};
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
      e = errno;
      close(fd);
      crib_fail(err, e, "set recursive attributes on `%s`", dest);
      goto fail;
    }
  }
  if (o.propagation && mount(NULL, target, NULL, o.propagation, NULL) < 0) {
    e = errno;
    close(fd);
    crib_fail(err, e, "set propagation of `%s`", dest);
    goto fail;
  }
  close(fd);
  return 0;
fail:
  return crib_err_wrap(err, "mounts[%zu] (%s)", i, dest);
}
