#include "mounts.h"

#include <dirent.h>
#include <errno.h>
#include <linux/magic.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "idmap-mount.h"
#include "mount-fd.h"
#include "root-path.h"
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

int crib_rootfs_propagation(json_t *spec, unsigned long *flags, crib_err *err) {
  const char *p = crib_json_str(json_object_get(spec, "linux"), "rootfsPropagation");
  *flags = MS_SLAVE | MS_REC;
  if (!p || !*p) return 0;
  *flags = crib_mount_propagation(p);
  if (!*flags) return crib_fail(err, 0, "linux.rootfsPropagation: unknown value `%s`", p);
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

int crib_mount_add_label(crib_mount_opts *o, const char *type, const char *label, crib_err *err) {
  if (!type || strcmp(type, "tmpfs") != 0) return 0;
  /* The label goes into an option value: a quote or newline in it would make other options. */
  if (strchr(label, '"')) return crib_fail(err, EINVAL, "linux.mountLabel `%s` holds a double quote", label);
  if (strchr(label, '\n')) return crib_fail(err, EINVAL, "linux.mountLabel holds a newline");
  size_t off = strlen(o->data);
  int n = snprintf(o->data + off, sizeof o->data - off, "%scontext=\"%s\"", off ? "," : "", label);
  if (n < 0 || (size_t)n >= sizeof o->data - off)
    return crib_fail(err, E2BIG, "mount options too long with linux.mountLabel `%s`", label);
  return 0;
}

/* Label the root of the detached mount mfd (an O_PATH fd) with the container's mount label: for
 * an mqueue, whose mount takes no context= option. Done before the mount is attached, so the
 * container never sees it unlabelled. */
static int label_mount_root(int mfd, const char *label, const char *dest, crib_err *err) {
  int root = openat(mfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return crib_fail(err, errno, "open the root of the mount for `%s`", dest);
  int rc = 0;
  if (fsetxattr(root, "security.selinux", label, strlen(label), 0) < 0)
    rc = crib_fail(err, errno, "label `%s` with linux.mountLabel `%s`", dest, label);
  if (close(root) < 0 && rc == 0) rc = crib_fail(err, errno, "close the root of the mount for `%s`", dest);
  return rc;
}

/* Kernel filesystems and /dev must be mounted on plain paths (see mounts.h). */
static bool needs_plain_path(const char *type, const char *dest) {
  static const char *kernel_fs[] = {"proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"};
  for (size_t i = 0; i < sizeof kernel_fs / sizeof kernel_fs[0]; i++)
    if (type && strcmp(type, kernel_fs[i]) == 0) return true;
  return strcmp(dest, "/dev") == 0 || strcmp(dest, "/dev/") == 0;
}

/* Attach mfd onto dest (created when missing, checked to be a directory or not as is_dir says);
 * mfd stays the caller's to close. */
static int attach_at(int rootfd, int mfd, const char *dest, bool is_dir, bool plain, crib_err *err) {
  int target = crib_root_target(rootfd, dest, is_dir, plain, err);
  if (target < 0) return -1;
  int rc = crib_mnt_attach(mfd, target, dest, err);
  close(target);
  return rc;
}

void crib_v1_cgroups_close(crib_v1_cgroups *c) {
  for (size_t i = 0; i < c->n; i++)
    if (c->fd[i] >= 0) close(c->fd[i]);
  c->n = 0;
}

/* One hierarchy's clone, appended to out (none when the container has no directory there). */
static int clone_v1_hierarchy(const char *mnt, const char *name, const char *cgroup_path, unsigned long root_prop,
                              crib_v1_cgroups *out, crib_err *err) {
  char src[PATH_MAX * 2];
  snprintf(src, sizeof src, "%s%s", mnt, cgroup_path);
  if (out->n == CRIB_MAX_V1_HIERARCHIES)
    return crib_fail(err, E2BIG, "more than %d cgroup hierarchies", CRIB_MAX_V1_HIERARCHIES);
  if (strlen(name) >= sizeof out->name[0]) return crib_fail(err, ENAMETOOLONG, "cgroup hierarchy `%s`", mnt);
  int m = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (m < 0) return errno == ENOENT ? 0 : crib_fail(err, errno, "open_tree cgroup `%s`", src);
  if (crib_mnt_propagate(m, root_prop, src, err) < 0) {
    close(m);
    return -1;
  }
  snprintf(out->name[out->n], sizeof out->name[0], "%s", name);
  out->fd[out->n++] = m;
  return 0;
}

/* Hierarchies are found by listing /sys/fs/cgroup rather than by reading /proc/self/mountinfo,
 * whose text grows with every mount on the node (each pod's namespace pins and rootfs overlays,
 * with their long lowerdir options): at 250 pods, generating it was 3 ms of each container's
 * start. A hierarchy is a directory there holding a cgroup or cgroup2 filesystem, on another
 * device than /sys/fs/cgroup itself. */
int crib_v1_cgroups_clone(const char *cgroup_path, unsigned long root_prop, crib_v1_cgroups *out, crib_err *err) {
  static const char root[] = "/sys/fs/cgroup";
  out->n = 0;
  int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return crib_fail(err, errno, "open `%s`", root);
  struct stat rootst;
  if (fstat(dfd, &rootst) < 0) {
    int e = errno;
    close(dfd);
    return crib_fail(err, e, "stat `%s`", root);
  }
  DIR *dir = fdopendir(dfd);
  if (!dir) {
    int e = errno;
    close(dfd);
    return crib_fail(err, e, "list `%s`", root);
  }
  int rc = 0;
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(dir);
    if (!de) {
      if (errno != 0) rc = crib_fail(err, errno, "list `%s`", root);
      break;
    }
    if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)) continue;
    /* Symlinks (cpu -> cpu,cpuacct) are skipped: only mount points are hierarchies. */
    struct stat st;
    if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      rc = crib_fail(err, errno, "stat `%s/%s`", root, de->d_name);
      break;
    }
    if (!S_ISDIR(st.st_mode) || st.st_dev == rootst.st_dev) continue;
    char mnt[PATH_MAX];
    if (snprintf(mnt, sizeof mnt, "%s/%s", root, de->d_name) >= (int)sizeof mnt) continue;
    struct statfs fs;
    if (statfs(mnt, &fs) < 0) {
      rc = crib_fail(err, errno, "statfs `%s`", mnt);
      break;
    }
    if (fs.f_type != CGROUP_SUPER_MAGIC && fs.f_type != CGROUP2_SUPER_MAGIC) continue;
    rc = clone_v1_hierarchy(mnt, de->d_name, cgroup_path, root_prop, out, err);
    if (rc != 0) break;
  }
  closedir(dir);
  if (rc < 0) crib_v1_cgroups_close(out);
  return rc;
}

/* Each clone bound into the tmpfs at cg (an attached mount fd) as <name>. */
static int attach_v1_hierarchies(int cg, const char *dest, const crib_mount_opts *o, crib_v1_cgroups *v1,
                                 crib_err *err) {
  for (size_t i = 0; i < v1->n; i++) {
    char what[PATH_MAX * 2];
    snprintf(what, sizeof what, "%s/%s", dest, v1->name[i]);
    const char *name = v1->name[i];
    unsigned long flags = (o->flags & MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (crib_mnt_restrict(v1->fd[i], flags, false, what, err) < 0) return -1;
    /* The tmpfs is new and only ours: nothing can race these names. */
    if (mkdirat(cg, name, 0755) < 0 && errno != EEXIST) return crib_fail(err, errno, "mkdir `%s`", what);
    int target = openat(cg, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (target < 0) return crib_fail(err, errno, "open `%s`", what);
    int rc = crib_mnt_attach(v1->fd[i], target, what, err);
    close(target);
    if (rc < 0) return -1;
  }
  return 0;
}

/* v1: a tmpfs at the destination with the container's own cgroup directory of each hierarchy
 * bound below it (as runc does); v2: a cgroup2 mount, scoped by the cgroup namespace. The
 * container's directory is <hierarchy mount point><cgroup path>, as the cgroup library made it,
 * so this needs neither /proc/self/cgroup nor the child to be in the cgroup yet. */
static int mount_cgroup(int rootfd, const char *dest, const crib_mount_opts *o,
                        const crib_mount_env *env, crib_err *err) {
  if (env->cgroup_v2) {
    int m = crib_mnt_new("cgroup2", "cgroup2", NULL, o->flags, dest, err);
    if (m < 0) return -1;
    int rc = attach_at(rootfd, m, dest, true, true, err);
    close(m);
    return rc;
  }
  int cg = crib_mnt_new("tmpfs", "tmpfs", "mode=755", MS_NOSUID | MS_NODEV | MS_NOEXEC, dest, err);
  if (cg < 0) return -1;
  if (attach_at(rootfd, cg, dest, true, true, err) < 0) {
    close(cg);
    return -1;
  }
  crib_v1_cgroups here = {0}, *v1 = env->v1;
  int rc = 0;
  if (!v1) {
    rc = crib_v1_cgroups_clone(env->cgroup_path, env->root_prop, &here, err);
    v1 = &here;
  }
  if (rc == 0) rc = attach_v1_hierarchies(cg, dest, o, v1, err);
  crib_v1_cgroups_close(v1);
  if (rc == 0 && (o->flags & MS_RDONLY)) rc = crib_mnt_restrict(cg, MS_RDONLY, false, dest, err);
  close(cg);
  return rc;
}

/* The detached mount for entry m: a copy of the bind source, or a new filesystem instance.
 * *is_dir says what kind of target it needs. */
static int build_mount(const char *type, const char *source, const crib_mount_opts *o,
                       const crib_mount_env *env, const char *dest, bool *is_dir, crib_err *err) {
  *is_dir = true;
  if (o->bind) {
    if (!source) return crib_fail(err, 0, "bind mount without a source");
    char srcbuf[PATH_MAX * 2];
    if (source[0] != '/') {
      snprintf(srcbuf, sizeof srcbuf, "%s/%s", env->bundle, source);
      source = srcbuf;
    }
    int m = crib_mnt_clone(AT_FDCWD, source, o->recursive, dest, err);
    if (m < 0) return -1;
    struct stat sb;
    if (fstat(m, &sb) < 0) {
      int e = errno;
      close(m);
      return crib_fail(err, e, "fstat bind source `%s`", source);
    }
    /* The kind is read from the copy itself, so it is the kind of what gets mounted. */
    *is_dir = S_ISDIR(sb.st_mode);
    /* A bind keeps every restriction of its source; options can only add more. */
    if (crib_mnt_restrict(m, o->flags, false, dest, err) < 0) {
      close(m);
      return -1;
    }
    return m;
  }
  int m = strcmp(type, "proc") == 0 && env->proc_pidns >= 0
              ? crib_mnt_new_with_fd(type, source, o->data, o->flags, "pidns", env->proc_pidns, dest, err)
              : crib_mnt_new(type, source, o->data, o->flags, dest, err);
  /* sysfs belongs to the network namespace's owner: in a user namespace that joined the host's
   * network, a new one is refused, so bind the host's instead (as runc), with the asked flags. */
  if (m < 0 && err->errnum == EPERM && strcmp(type, "sysfs") == 0) {
    if (env->host_sys && *env->host_sys >= 0) {
      m = *env->host_sys;
      *env->host_sys = -1;
    } else {
      m = crib_mnt_clone(AT_FDCWD, "/sys", true, dest, err);
    }
    if (m >= 0 && crib_mnt_restrict(m, o->flags, true, dest, err) < 0) {
      close(m);
      return -1;
    }
  }
  return m;
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
  if (!o.bind && (strcmp(type, "cgroup") == 0 || strcmp(type, "cgroup2") == 0)) {
    if (mount_cgroup(rootfd, dest, &o, env, err) < 0) goto fail;
    return 0;
  }
  if (!o.bind && env->mount_label && crib_mount_add_label(&o, type, env->mount_label, err) < 0) goto fail;
  bool plain = needs_plain_path(o.bind ? NULL : type, dest);

  bool is_dir;
  int mfd, rc = 0;
  if (env->pre && env->pre->fd && i < env->pre->n && env->pre->fd[i] >= 0) {
    /* Built complete before we joined our namespaces (idmap-mount.h). */
    mfd = env->pre->fd[i];
    env->pre->fd[i] = -1;
    struct stat sb;
    if (fstat(mfd, &sb) < 0) {
      crib_fail(err, errno, "fstat the prepared mount");
      close(mfd);
      goto fail;
    }
    is_dir = S_ISDIR(sb.st_mode);
  } else if (crib_mount_is_idmapped(m)) {
    crib_fail(err, 0, "uidMappings/gidMappings: the idmapped mount was not prepared");
    goto fail;
  } else {
    mfd = build_mount(type, source, &o, env, dest, &is_dir, err);
    if (mfd < 0) goto fail;
    /* Labelled first: a read-only attribute would refuse the label. */
    if (!o.bind && env->mount_label && strcmp(type, "mqueue") == 0) rc = label_mount_root(mfd, env->mount_label, dest, err);
    /* Everything about the mount is settled before anyone can see it. */
    if (rc == 0) rc = crib_mnt_setattr(mfd, o.attr_set, o.attr_clr, true, dest, err);
  }
  if (rc == 0) rc = attach_at(rootfd, mfd, dest, is_dir, plain, err);
  /* Propagation only means something once attached (peers are made on attach). */
  if (rc == 0 && o.propagation) rc = crib_mnt_propagate(mfd, o.propagation, dest, err);
  close(mfd);
  if (rc < 0) goto fail;
  return 0;
fail:
  return crib_err_wrap(err, "mounts[%zu] (%s)", i, dest);
}
