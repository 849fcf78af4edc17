#include "rootfs-dev.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files.h"
#include "mount-fd.h"
#include "root-path.h"
#include "spec.h"

typedef struct device {
  const char *path;
  char type; /* c, b or p */
  unsigned maj, min;
  mode_t mode;
  uid_t uid;
  gid_t gid;
} device;

static const device default_devices[] = {
    {"/dev/null", 'c', 1, 3, 0666, 0, 0},   {"/dev/zero", 'c', 1, 5, 0666, 0, 0},
    {"/dev/full", 'c', 1, 7, 0666, 0, 0},   {"/dev/random", 'c', 1, 8, 0666, 0, 0},
    {"/dev/urandom", 'c', 1, 9, 0666, 0, 0}, {"/dev/tty", 'c', 5, 0, 0666, 0, 0},
};

/* Every container gets its own devpts (so /dev/ptmx works) and a /dev/shm, even when the spec's
 * mounts forget them. */
int crib_dev_default_mounts(int rootfd, json_t *spec, crib_err *err) {
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
    json_array_foreach(json_object_get(spec, "mounts"), i, m) {
      if (strcmp(crib_json_str(m, "destination"), defaults[k].dest) == 0) given = true;
    }
    if (given) continue;
    int mfd = crib_mnt_new(defaults[k].type, defaults[k].source, defaults[k].data, defaults[k].flags,
                           defaults[k].dest, err);
    if (mfd < 0) return -1;
    int target = crib_root_target(rootfd, defaults[k].dest, true, true, err);
    int rc = target < 0 ? -1 : crib_mnt_attach(mfd, target, defaults[k].dest, err);
    if (target >= 0) close(target);
    close(mfd);
    if (rc < 0) return -1;
  }
  return 0;
}

static mode_t kind_of(char type) {
  return type == 'b' ? S_IFBLK : type == 'p' ? S_IFIFO : S_IFCHR;
}

/* In a user namespace: a copy of the host's node at the same path, once it is checked to be the
 * device the spec asks for. */
static int host_node(const device *d, crib_err *err) {
  int m = crib_mnt_clone(AT_FDCWD, d->path, false, d->path, err);
  if (m < 0) return -1;
  struct stat sb;
  if (fstat(m, &sb) < 0) {
    int e = errno;
    close(m);
    return crib_fail(err, e, "fstat host device `%s`", d->path);
  }
  if ((sb.st_mode & S_IFMT) != kind_of(d->type) ||
      (d->type != 'p' && sb.st_rdev != makedev(d->maj, d->min))) {
    close(m);
    return crib_fail(err, 0, "host `%s` is a %s %u:%u, not the device asked for (%c %u:%u)", d->path,
                     crib_file_kind(sb.st_mode), major(sb.st_rdev), minor(sb.st_rdev), d->type,
                     d->maj, d->min);
  }
  return m;
}

/* `*copy`: the node's copy made beforehand (crib_dev_clone_host_nodes), taken; -1 or no copy:
 * made now from the host's path, which this mount namespace then has. */
static int bind_host_node(int parent, const char *base, const device *d, int *copy, crib_err *err) {
  int m = copy && *copy >= 0 ? *copy : host_node(d, err);
  if (copy) *copy = -1;
  if (m < 0) return -1;
  int f = openat(parent, base, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (f >= 0) close(f);
  else if (errno != EEXIST) {
    int e = errno;
    close(m);
    return crib_fail(err, e, "create `%s`", d->path);
  }
  int t = openat(parent, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (t < 0) {
    int e = errno;
    close(m);
    return crib_fail(err, e, "open `%s`", d->path);
  }
  struct stat sb;
  int rc = 0;
  if (fstat(t, &sb) < 0) rc = crib_fail(err, errno, "fstat `%s`", d->path);
  else if (S_ISDIR(sb.st_mode)) rc = crib_fail(err, 0, "device path `%s` is a directory", d->path);
  else rc = crib_mnt_attach(m, t, d->path, err);
  close(t);
  close(m);
  return rc;
}

static int make_device(int rootfd, const device *d, bool userns, int *copy, crib_err *err) {
  char dir[PATH_MAX];
  if (!CRIB_FMT(dir, "%s", d->path)) return crib_fail(err, ENAMETOOLONG, "device path `%s`", d->path);
  char *slash = strrchr(dir, '/');
  if (!slash || !slash[1]) return crib_fail(err, 0, "device path `%s` is not a file path", d->path);
  *slash = '\0';
  const char *base = d->path + (slash - dir) + 1;
  const char *parent_path = dir[0] ? dir : "/";
  if (crib_root_mkdirs(rootfd, parent_path, false, true, err) < 0) return -1;
  int parent = crib_root_open(rootfd, parent_path, O_PATH | O_DIRECTORY, true, err);
  if (parent < 0) return -1;
  int rc = 0;
  if (userns) {
    /* mknod is refused in a user namespace: bind the host's node instead. */
    rc = bind_host_node(parent, base, d, copy, err);
  } else {
    /* umask 0 so the node gets exactly the asked mode, with no chmod by name afterwards. */
    mode_t old = umask(0);
    int made = mknodat(parent, base, kind_of(d->type) | (d->mode & 07777), makedev(d->maj, d->min));
    int e = errno;
    umask(old);
    if (made < 0) {
      if (e != EEXIST) rc = crib_fail(err, e, "mknod `%s`", d->path);
    } else if (fchownat(parent, base, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0) {
      rc = crib_fail(err, errno, "chown `%s`", d->path);
    }
  }
  close(parent);
  return rc;
}

/* linux.devices[i] as a device, or an error naming what is wrong with it. */
static int spec_device(json_t *j, size_t i, device *d, crib_err *err) {
  const char *path = crib_json_str(j, "path"), *type = crib_json_str(j, "type");
  if (!path || path[0] != '/' || !type || strchr("cbup", type[0]) == NULL || type[1])
    return crib_fail(err, 0, "linux.devices[%zu]: needs an absolute path and type c|b|u|p", i);
  *d = (device){.path = path, .type = type[0] == 'u' ? 'c' : type[0],
                .maj = (unsigned)crib_json_int(j, "major", 0), .min = (unsigned)crib_json_int(j, "minor", 0),
                .mode = (mode_t)crib_json_int(j, "fileMode", 0666), .uid = (uid_t)crib_json_int(j, "uid", 0),
                .gid = (gid_t)crib_json_int(j, "gid", 0)};
  return 0;
}

#define N_DEFAULT_DEVICES (sizeof default_devices / sizeof default_devices[0])

/* Calls fn for each device the container gets, in order, k its index: the defaults, then
 * linux.devices (each checked first; fn's failure for one is wrapped naming it). */
static int each_device(json_t *spec, int (*fn)(const device *d, size_t k, void *arg, crib_err *err), void *arg,
                       crib_err *err) {
  for (size_t k = 0; k < N_DEFAULT_DEVICES; k++)
    if (fn(&default_devices[k], k, arg, err) < 0) return -1;
  size_t i;
  json_t *j;
  json_array_foreach(json_object_get(json_object_get(spec, "linux"), "devices"), i, j) {
    device d;
    if (spec_device(j, i, &d, err) < 0) return -1;
    if (fn(&d, N_DEFAULT_DEVICES + i, arg, err) < 0) return crib_err_wrap(err, "linux.devices[%zu]", i);
  }
  return 0;
}

size_t crib_dev_count(json_t *spec) {
  return N_DEFAULT_DEVICES + json_array_size(json_object_get(json_object_get(spec, "linux"), "devices"));
}

void crib_host_nodes_close(crib_host_nodes *h) {
  for (size_t k = 0; k < h->n; k++)
    if (h->fd[k] >= 0) close(h->fd[k]);
  h->n = 0;
}

static int clone_host_node(const device *d, size_t k, void *arg, crib_err *err) {
  (void)k;
  crib_host_nodes *out = arg;
  int m = host_node(d, err);
  if (m < 0) return -1;
  out->fd[out->n++] = m;
  return 0;
}

int crib_dev_clone_host_nodes(json_t *spec, crib_host_nodes *out, crib_err *err) {
  out->n = 0;
  size_t total = crib_dev_count(spec);
  if (total > CRIB_MAX_HOST_NODES)
    return crib_fail(err, E2BIG, "linux.devices: %zu device nodes, at most %d", total, CRIB_MAX_HOST_NODES);
  if (each_device(spec, clone_host_node, out, err) < 0) {
    crib_host_nodes_close(out);
    return -1;
  }
  return 0;
}

typedef struct node_maker {
  int rootfd;
  bool userns;
  crib_host_nodes *host;
} node_maker;

static int make_node(const device *d, size_t k, void *arg, crib_err *err) {
  node_maker *m = arg;
  return make_device(m->rootfd, d, m->userns, m->host && k < m->host->n ? &m->host->fd[k] : NULL, err);
}

int crib_dev_nodes(int rootfd, json_t *spec, bool userns, crib_host_nodes *host, crib_err *err) {
  node_maker maker = {.rootfd = rootfd, .userns = userns, .host = host};
  if (each_device(spec, make_node, &maker, err) < 0) return -1;
  int dev = crib_root_open(rootfd, "/dev", O_PATH | O_DIRECTORY, true, err);
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

int crib_dev_console(int peer, crib_err *err) {
  int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return crib_fail(err, errno, "open /");
  int m = crib_mnt_clone(peer, "", false, "/dev/console", err);
  int target = m < 0 ? -1 : crib_root_target(root, "/dev/console", false, true, err);
  int rc = target < 0 ? -1 : crib_mnt_attach(m, target, "/dev/console", err);
  if (target >= 0) close(target);
  if (m >= 0) close(m);
  close(root);
  return rc;
}
