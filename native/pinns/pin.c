/* Pinning: the parent makes the empty target files; a forked child unshares, configures the new
 * namespaces (hostname, sysctls, lo) and bind-mounts its own /proc/self/ns/<kind> onto them, then
 * exits. The mounts keep the namespaces alive with no process left behind. Any failure undoes
 * everything this run created. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pinns.h"

const struct ns_kind pinns_kinds[] = {
    {"net", CLONE_NEWNET},
    {"ipc", CLONE_NEWIPC},
    {"uts", CLONE_NEWUTS},
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

/* Runs in the forked child: everything that must happen inside the new namespaces. */
static int child_setup(const struct pin_opts *opts, crib_err *err) {
  int flags = 0;
  for (size_t k = 0; k < pinns_nkinds; k++)
    if (opts->want[k]) flags |= pinns_kinds[k].flag;
  if (unshare(flags) < 0) return crib_fail(err, errno, "unshare");
  if (opts->hostname != NULL && sethostname(opts->hostname, strlen(opts->hostname)) < 0)
    return crib_fail(err, errno, "sethostname `%s`", opts->hostname);
  if (opts->want[0] && pinns_loopback_up(err) < 0) return -1;
  for (size_t i = 0; i < opts->nsysctls; i++)
    if (pinns_sysctl_apply(opts->sysctls[i], err) < 0) return -1;
  for (size_t k = 0; k < pinns_nkinds; k++) {
    if (!opts->want[k]) continue;
    char src[64], dst[4096];
    snprintf(src, sizeof src, "/proc/self/ns/%s", pinns_kinds[k].name);
    if (pinns_path(dst, sizeof dst, opts->dir, pinns_kinds[k].name, err) < 0) return -1;
    if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
      return crib_fail(err, errno, "bind mount `%s` on `%s`", src, dst);
  }
  return 0;
}

int pinns_pin(const struct pin_opts *opts, crib_err *err) {
  bool any = false;
  for (size_t k = 0; k < pinns_nkinds; k++) any = any || opts->want[k];
  if (!any) return crib_fail(err, 0, "nothing to pin: give at least one of --net, --ipc, --uts");
  if (opts->hostname != NULL && !opts->want[2])
    return crib_fail(err, 0, "--hostname needs --uts: refusing to rename the host");
  if (check_sysctls(opts, err) < 0) return -1;

  bool made_dir = false;
  bool made[3] = {false, false, false};
  char paths[3][4096];
  int ret = -1;
  int pipefd[2] = {-1, -1};

  if (mkdir(opts->dir, 0755) == 0)
    made_dir = true;
  else if (errno != EEXIST)
    return crib_fail(err, errno, "mkdir `%s`", opts->dir);

  for (size_t k = 0; k < pinns_nkinds; k++) {
    if (!opts->want[k]) continue;
    if (pinns_path(paths[k], sizeof paths[k], opts->dir, pinns_kinds[k].name, err) < 0) goto out;
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

  if (pipe2(pipefd, O_CLOEXEC) < 0) {
    crib_fail(err, errno, "pipe2");
    goto out;
  }
  pid_t pid = fork();
  if (pid < 0) {
    crib_fail(err, errno, "fork");
    goto out;
  }
  if (pid == 0) {
    crib_err cerr = {0};
    if (close(pipefd[0]) < 0) crib_fail(&cerr, errno, "close pipe");
    else if (child_setup(opts, &cerr) == 0) _exit(0);
    /* The parent reads EOF and reports a dead child if even this write fails. */
    (void)crib_write_all(pipefd[1], &cerr, sizeof cerr);
    _exit(1);
  }
  int closed = close(pipefd[1]);
  pipefd[1] = -1;
  if (closed < 0) {
    crib_fail(err, errno, "close pipe");
    (void)kill(pid, SIGKILL);
    (void)waitpid(pid, NULL, 0);
    goto out;
  }
  crib_err cerr = {0};
  long n = pinns_read_all(pipefd[0], &cerr, sizeof cerr);
  int saved = errno;
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      crib_fail(err, errno, "waitpid %d", (int)pid);
      goto out;
    }
  }
  if (n < 0) {
    crib_fail(err, saved, "read from child");
    goto out;
  }
  if (n == (long)sizeof cerr) {
    cerr.msg[sizeof cerr.msg - 1] = '\0';
    *err = cerr;
    goto out;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    crib_fail(err, 0, "namespace child %d died (status 0x%x) before reporting", (int)pid, status);
    goto out;
  }
  ret = 0;

out:
  /* Cleanup is best effort: the first error is the one worth reporting. */
  if (pipefd[0] >= 0) (void)close(pipefd[0]);
  if (pipefd[1] >= 0) (void)close(pipefd[1]);
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
