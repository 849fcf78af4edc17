/* Pinning: the parent makes the empty target files; a forked child unshares and configures the
 * new namespaces (hostname, sysctls, lo) and waits; the parent bind-mounts the child's
 * /proc/<pid>/ns/<kind> onto the files and lets it exit. The mounts keep the namespaces alive
 * with no process left behind. Any failure undoes everything this run created.
 *
 * With a user namespace, the child unshares it first and the parent writes its id maps (as host
 * root: the child could only map its own id); the child then becomes the namespace's root and
 * creates the others, which the user namespace therefore owns: the pod's root administers its
 * network (sysfs, sysctls) without any privilege over the host's. The parent does the bind
 * mounts because the child, inside the user namespace, may no longer mount in the host's
 * mount namespace.
 *
 * With the pod network options, the pinned network namespace is attached to the node's bridge
 * once pinned (pod-net.c); a failure there undoes the pinning too. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <unistd.h>

#include "pinns.h"

const struct ns_kind pinns_kinds[] = {
    {"net", CLONE_NEWNET},
    {"ipc", CLONE_NEWIPC},
    {"uts", CLONE_NEWUTS},
    {"user", CLONE_NEWUSER},
};
const size_t pinns_nkinds = sizeof pinns_kinds / sizeof pinns_kinds[0];

int pinns_path(char *buf, size_t size, const char *dir, const char *name, crib_err *err) {
  int n = snprintf(buf, size, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= size) return crib_fail(err, ENAMETOOLONG, "path `%s/%s`", dir, name);
  return 0;
}

long pinns_read_all(int fd, void *buf, size_t len) {
  char *p = buf;
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, p + got, len - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    got += (size_t)n;
  }
  return (long)got;
}

/* Unmount (every stacked mount) and unlink one pin file; a missing or unmounted file is fine. */
static int unpin_file(const char *path, crib_err *err) {
  for (;;) {
    if (umount2(path, MNT_DETACH) == 0) continue;
    if (errno == EINVAL || errno == ENOENT) break;
    return crib_fail(err, errno, "umount2 `%s`", path);
  }
  if (unlink(path) < 0 && errno != ENOENT) return crib_fail(err, errno, "unlink `%s`", path);
  return 0;
}

static int check_sysctls(const struct pin_opts *opts, crib_err *err) {
  for (size_t i = 0; i < opts->nsysctls; i++) {
    const char *eq = strchr(opts->sysctls[i], '=');
    if (eq == NULL || eq == opts->sysctls[i])
      return crib_fail(err, 0, "sysctl `%s`: expected KEY=VALUE", opts->sysctls[i]);
    char key[256];
    size_t klen = (size_t)(eq - opts->sysctls[i]);
    if (klen >= sizeof key) return crib_fail(err, ENAMETOOLONG, "sysctl `%s`", opts->sysctls[i]);
    memcpy(key, opts->sysctls[i], klen);
    key[klen] = '\0';
    int kind = pinns_sysctl_kind(key, err);
    if (kind < 0) return -1;
    if (!opts->want[kind])
      return crib_fail(err, 0,
                       "sysctl `%s` belongs to the %s namespace, which is not being created "
                       "(add --%s): refusing to change the host",
                       key, pinns_kinds[kind].name, pinns_kinds[kind].name);
  }
  return 0;
}

/* Child -> parent: one tag byte; TAG_ERROR is followed by a crib_err. */
enum { TAG_USERNS = 'U', TAG_READY = 'R', TAG_ERROR = 'E' };

static void child_report(int fd, char tag, const crib_err *cerr) {
  /* The parent reads EOF and reports a dead child if even this write fails. */
  if (crib_write_all(fd, &tag, 1) < 0) _exit(1);
  if (cerr != NULL) (void)crib_write_all(fd, cerr, sizeof *cerr);
}

/* Wait for the parent's go-ahead byte; EOF (the parent gave up) or anything else ends us. */
static void child_wait(int fd) {
  char b;
  if (pinns_read_all(fd, &b, 1) != 1 || b != 'G') _exit(1);
}

/* Runs in the forked child: everything that must happen inside the new namespaces. */
static int child_setup(const struct pin_opts *opts, int to_parent, int from_parent, crib_err *err) {
  if (opts->want[PINNS_USER]) {
    if (unshare(CLONE_NEWUSER) < 0) return crib_fail(err, errno, "unshare user namespace");
    child_report(to_parent, TAG_USERNS, NULL);
    child_wait(from_parent);
    /* Root of the new namespace, so what we create below is the pod root's. */
    if (setresgid(0, 0, 0) < 0) return crib_fail(err, errno, "setresgid 0 in the user namespace");
    if (setresuid(0, 0, 0) < 0) return crib_fail(err, errno, "setresuid 0 in the user namespace");
  }
  int flags = 0;
  for (size_t k = 0; k < pinns_nkinds; k++)
    if (opts->want[k] && k != PINNS_USER) flags |= pinns_kinds[k].flag;
  if (flags != 0 && unshare(flags) < 0) return crib_fail(err, errno, "unshare");
  if (opts->hostname != NULL && sethostname(opts->hostname, strlen(opts->hostname)) < 0)
    return crib_fail(err, errno, "sethostname `%s`", opts->hostname);
  if (opts->want[0] && pinns_loopback_up(err) < 0) return -1;
  for (size_t i = 0; i < opts->nsysctls; i++)
    if (pinns_sysctl_apply(opts->sysctls[i], err) < 0) return -1;
  return 0;
}

static int write_map(pid_t pid, const char *file, const struct id_maps *maps, crib_err *err) {
  char path[64], buf[PINNS_MAX_ID_MAPS * 34];
  int len = pinns_id_maps_format(maps, buf, sizeof buf, err);
  if (len < 0) return -1;
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return crib_fail(err, errno, "open `%s`", path);
  /* One write: the kernel takes a map only whole, and only once. */
  ssize_t n = write(fd, buf, (size_t)len);
  int saved = errno;
  if (close(fd) < 0 && n == len) return crib_fail(err, errno, "close `%s`", path);
  if (n != len) return crib_fail(err, n < 0 ? saved : EIO, "write `%s` to `%s`", buf, path);
  return 0;
}

/* Bind the child's namespaces onto the pin files (the user namespace first: it owns the rest). */
static int bind_namespaces(const struct pin_opts *opts, pid_t pid, char paths[][4096], crib_err *err) {
  static const size_t order[] = {PINNS_USER, 0, 1, 2};
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
    size_t k = order[i];
    if (!opts->want[k]) continue;
    char src[64];
    snprintf(src, sizeof src, "/proc/%d/ns/%s", (int)pid, pinns_kinds[k].name);
    if (mount(src, paths[k], NULL, MS_BIND, NULL) < 0)
      return crib_fail(err, errno, "bind mount `%s` on `%s`", src, paths[k]);
  }
  return 0;
}

/* Read one tag from the child; its error when it sent one. */
static int read_tag(int fd, char *tag, crib_err *err) {
  long n = pinns_read_all(fd, tag, 1);
  if (n < 0) return crib_fail(err, errno, "read from the namespace child");
  if (n == 0) return crib_fail(err, 0, "the namespace child exited before reporting");
  if (*tag != TAG_ERROR) return 0;
  crib_err cerr = {0};
  if (pinns_read_all(fd, &cerr, sizeof cerr) != (long)sizeof cerr)
    return crib_fail(err, 0, "the namespace child failed without saying why");
  cerr.msg[sizeof cerr.msg - 1] = '\0';
  *err = cerr;
  return -1;
}

static int go(int fd, crib_err *err) {
  if (crib_write_all(fd, "G", 1) < 0) return crib_fail(err, errno, "write to the namespace child");
  return 0;
}

int pinns_pin(const struct pin_opts *opts, crib_err *err) {
  bool any = false;
  for (size_t k = 0; k < pinns_nkinds; k++) any = any || (opts->want[k] && k != PINNS_USER);
  if (!any) return crib_fail(err, 0, "nothing to pin: give at least one of --net, --ipc, --uts");
  if (opts->hostname != NULL && !opts->want[2])
    return crib_fail(err, 0, "--hostname needs --uts: refusing to rename the host");
  if (opts->want[PINNS_USER] && (pinns_id_maps_check(&opts->uids, "--uid-map", err) < 0 ||
                                 pinns_id_maps_check(&opts->gids, "--gid-map", err) < 0))
    return -1;
  if (!opts->want[PINNS_USER] && (opts->uids.n > 0 || opts->gids.n > 0))
    return crib_fail(err, 0, "--uid-map and --gid-map need --user");
  if (check_sysctls(opts, err) < 0) return -1;

  bool made_dir = false;
  bool made[4] = {false, false, false, false};
  char paths[4][4096];
  int ret = -1;
  int up[2] = {-1, -1}, down[2] = {-1, -1};
  pid_t pid = -1;

  for (size_t k = 0; k < pinns_nkinds; k++)
    if (opts->want[k] && pinns_path(paths[k], sizeof paths[k], opts->dir, pinns_kinds[k].name, err) < 0) return -1;
  if (opts->net != NULL) {
    if (!opts->want[0]) return crib_fail(err, 0, "--bridge and the other pod network options need --net");
    opts->net->netns = paths[0];
    if (pinns_pod_net_check(opts->net, err) < 0) return -1;
  }

  if (mkdir(opts->dir, 0755) == 0)
    made_dir = true;
  else if (errno != EEXIST)
    return crib_fail(err, errno, "mkdir `%s`", opts->dir);

  for (size_t k = 0; k < pinns_nkinds; k++) {
    if (!opts->want[k]) continue;
    /* O_EXCL: never stack a new namespace over one that is already pinned there. */
    int fd = open(paths[k], O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0) {
      crib_fail(err, errno, "create `%s`", paths[k]);
      goto out;
    }
    made[k] = true;
    if (close(fd) < 0) {
      crib_fail(err, errno, "close `%s`", paths[k]);
      goto out;
    }
  }

  if (pipe2(up, O_CLOEXEC) < 0 || pipe2(down, O_CLOEXEC) < 0) {
    crib_fail(err, errno, "pipe2");
    goto out;
  }
  pid = fork();
  if (pid < 0) {
    crib_fail(err, errno, "fork");
    goto out;
  }
  if (pid == 0) {
    crib_err cerr = {0};
    if (close(up[0]) < 0 || close(down[1]) < 0) crib_fail(&cerr, errno, "close pipe");
    else if (child_setup(opts, up[1], down[0], &cerr) == 0) {
      child_report(up[1], TAG_READY, NULL);
      /* Stay until the parent has bound our namespaces. */
      child_wait(down[0]);
      _exit(0);
    }
    child_report(up[1], TAG_ERROR, &cerr);
    _exit(1);
  }
  int closed = close(up[1]) | close(down[0]);
  up[1] = down[0] = -1;
  if (closed < 0) {
    crib_fail(err, errno, "close pipe");
    goto out;
  }
  char tag;
  if (read_tag(up[0], &tag, err) < 0) goto out;
  if (tag == TAG_USERNS) {
    if (write_map(pid, "uid_map", &opts->uids, err) < 0 || write_map(pid, "gid_map", &opts->gids, err) < 0 ||
        go(down[1], err) < 0 || read_tag(up[0], &tag, err) < 0)
      goto out;
  }
  if (tag != TAG_READY) {
    crib_fail(err, 0, "the namespace child sent `%c`, not ready", tag);
    goto out;
  }
  if (bind_namespaces(opts, pid, paths, err) < 0 || go(down[1], err) < 0) goto out;
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      crib_fail(err, errno, "waitpid %d", (int)pid);
      goto out;
    }
  }
  pid = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    crib_fail(err, 0, "namespace child exited with status 0x%x", status);
    goto out;
  }
  /* The pod's network in the same process: a pod costs the daemon one helper, not two. */
  if (opts->net != NULL && pinns_pod_net_attach(opts->net, err) < 0) goto out;
  ret = 0;

out:
  /* Cleanup is best effort: the first error is the one worth reporting. */
  if (pid > 0) {
    (void)kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  for (int i = 0; i < 2; i++) {
    if (up[i] >= 0) (void)close(up[i]);
    if (down[i] >= 0) (void)close(down[i]);
  }
  if (ret < 0) {
    /* Undo only what this run made. */
    crib_err ignored = {0};
    for (size_t k = 0; k < pinns_nkinds; k++)
      if (made[k]) (void)unpin_file(paths[k], &ignored);
    if (made_dir) (void)rmdir(opts->dir);
  }
  return ret;
}

int pinns_remove(const char *dir, crib_err *err) {
  for (size_t k = 0; k < pinns_nkinds; k++) {
    char path[4096];
    if (pinns_path(path, sizeof path, dir, pinns_kinds[k].name, err) < 0) return -1;
    if (unpin_file(path, err) < 0) return -1;
  }
  /* The dir may hold other pod files (hosts, resolv.conf): only an empty one goes. */
  if (rmdir(dir) < 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST)
    return crib_fail(err, errno, "rmdir `%s`", dir);
  return 0;
}
