/* `restore --image-path DIR --bundle B [--work-path DIR] [--detach] [--pid-file F]
 * [--tcp-established] [--file-locks] ID`: runc's verb, for what crib needs. criu restores the
 * process tree that `checkpoint` dumped into DIR, as a new container ID whose bundle B has the
 * rootfs (with the checkpointed container's file changes already applied by the caller) and the
 * spec: the cgroup is B's (made and limited as by create, and criu runs inside it, so the
 * restored tree starts there: --manage-cgroups=ignore), the root is B's rootfs, each bind mount
 * checkpoint declared external is bound from B's mount of the same destination (so the restored
 * container sees its new pod's /etc/hosts, /etc/hostname, /dev/shm and volumes), the network
 * namespace is the one B's spec joins, so are its IPC and UTS namespaces (--join-ns: the new
 * pod's hostname and SysV IPC; criu writes the checkpointed hostname into a UTS namespace it
 * joins, so the new pod's names are put back after it), and the restored init's stdio are ours
 * (descriptors.json: a pipe it had is replaced by the fd we have at that number) — so a monitor
 * that runs restore as it runs create gets the restored process's output on its pipes, and
 * adopts it as its child (criu --restore-detached leaves it to the nearest subreaper). The container is running when
 * restore returns (there is no `start`); its state is written as create writes it.
 * Without --detach restore still returns once criu did (crib does not proxy a foreground
 * container's stdio as runc does). --console-socket is refused: checkpoint refuses terminals.
 * criu's log is restore.log in the work path (default: the image path). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <limits.h>
#include <unistd.h>

#include "cli.h"
#include "container.h"
#include "criu.h"
#include "files.h"
#include "spec.h"
#include "state.h"

/* The source B's spec binds at dest, or NULL. */
static const char *mount_source(json_t *spec, const char *dest) {
  json_t *m;
  size_t i;
  json_array_foreach(json_object_get(spec, "mounts"), i, m) {
    const char *d = crib_json_str(m, "destination");
    if (d && strcmp(d, dest) == 0) return crib_json_str(m, "source");
  }
  return NULL;
}

/* The path of the namespace of `type` B's spec joins, or NULL. */
static const char *joined_ns(json_t *spec, const char *type) {
  json_t *ns;
  size_t i;
  json_array_foreach(json_object_get(json_object_get(spec, "linux"), "namespaces"), i, ns) {
    const char *t = crib_json_str(ns, "type"), *p = crib_json_str(ns, "path");
    if (t && strcmp(t, type) == 0 && p && p[0]) return p;
  }
  return NULL;
}

static json_t *load_json(const char *dir, const char *name, crib_err *err) {
  char path[PATH_MAX];
  if (!CRIB_FMT(path, "%s/%s", dir, name)) {
    crib_fail(err, ENAMETOOLONG, "%s under `%s`", name, dir);
    return NULL;
  }
  json_error_t je;
  json_t *v = crib_json_load_path(path, &je);
  if (v == NULL) crib_fail(err, 0, "restore: `%s`: %s (not a checkpoint made by crib-runtime?)", path, je.text);
  return v;
}

/* The hostname and domain name of a UTS namespace, kept across criu restore: joining it
 * (--join-ns), criu still writes the checkpointed container's names into it, which would rename
 * the new pod (every container of it) after the old one. We read them before and put them back
 * after, from inside the namespace (setns of this single-threaded process, and back). */
typedef struct uts_names {
  char host[HOST_NAME_MAX + 1], domain[HOST_NAME_MAX + 1];
} uts_names;

/* Enters the namespace `path`, runs get (uname) or set (sethostname, setdomainname), returns. */
static int in_uts_ns(const char *path, uts_names *names, bool set, crib_err *err) {
  int self = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
  if (self < 0) return crib_fail(err, errno, "open `/proc/self/ns/uts`");
  int ns = open(path, O_RDONLY | O_CLOEXEC);
  if (ns < 0) {
    int e = errno;
    close(self);
    return crib_fail(err, e, "open UTS namespace `%s`", path);
  }
  int rc = 0;
  if (setns(ns, CLONE_NEWUTS) < 0) {
    rc = crib_fail(err, errno, "setns UTS namespace `%s`", path);
  } else {
    if (set) {
      if (sethostname(names->host, strlen(names->host)) < 0)
        rc = crib_fail(err, errno, "sethostname `%s` in `%s`", names->host, path);
      else if (setdomainname(names->domain, strlen(names->domain)) < 0)
        rc = crib_fail(err, errno, "setdomainname `%s` in `%s`", names->domain, path);
    } else {
      struct utsname u;
      if (uname(&u) < 0) {
        rc = crib_fail(err, errno, "uname in `%s`", path);
      } else {
        snprintf(names->host, sizeof names->host, "%s", u.nodename);
        snprintf(names->domain, sizeof names->domain, "%s", u.domainname);
      }
    }
    /* Back where we were, or this process would go on in the pod's namespace. */
    if (setns(self, CLONE_NEWUTS) < 0 && rc == 0) rc = crib_fail(err, errno, "setns back to our own UTS namespace");
  }
  close(ns);
  close(self);
  return rc;
}

int crib_cmd_restore(const crib_globals *g, int argc, char **argv, crib_err *err) {
  const char *image_path = NULL, *work_path = NULL, *bundle = NULL, *pid_file = NULL,
             *console = NULL;
  bool detach = false, tcp = false, locks = false;
  const crib_opt opts[] = {
      {"image-path", 0, CRIB_OPT_STRING, &image_path},
      {"work-path", 0, CRIB_OPT_STRING, &work_path},
      {"bundle", 'b', CRIB_OPT_STRING, &bundle},
      {"pid-file", 0, CRIB_OPT_STRING, &pid_file},
      {"console-socket", 0, CRIB_OPT_STRING, &console},
      {"detach", 'd', CRIB_OPT_FLAG, &detach},
      {"tcp-established", 0, CRIB_OPT_FLAG, &tcp},
      {"file-locks", 0, CRIB_OPT_FLAG, &locks},
  };
  int i = 0;
  if (crib_parse_flags(argc, argv, &i, opts, sizeof opts / sizeof opts[0], err) < 0) return -1;
  const char *id;
  if (crib_take_id(argc, argv, i, &id, err) < 0) return -1;
  if (crib_validate_id(id, err) < 0) return -1;
  if (!image_path || image_path[0] != '/')
    return crib_fail(err, EINVAL, "restore: --image-path must be an absolute directory");
  if (!work_path) work_path = image_path;
  if (work_path[0] != '/') return crib_fail(err, EINVAL, "restore: --work-path must be absolute");
  if (console)
    return crib_fail(err, ENOTSUP, "restore: --console-socket: crib-runtime does not checkpoint containers with a terminal");

  crib_state st;
  memset(&st, 0, sizeof st);
  json_t *spec = NULL, *desc = NULL, *info = NULL;
  crib_criu_argv a = {0};
  crib_cgroup cg;
  bool dir_made = false, cg_made = false;
  int netns_fd = -1, rc = -1;
  pid_t pid = 0;

  if (crib_state_path(g->root, id, st.dir, sizeof st.dir, err) < 0) return -1;
  snprintf(st.id, sizeof st.id, "%s", id);
  if (!realpath(bundle ? bundle : ".", st.bundle))
    return crib_fail(err, errno, "bundle `%s`", bundle ? bundle : ".");
  spec = crib_spec_load(st.bundle, err);
  if (!spec) goto out;
  if (crib_spec_rootfs(spec, st.bundle, st.rootfs, sizeof st.rootfs, err) < 0) goto out;
  if (crib_json_bool(json_object_get(spec, "process"), "terminal", false)) {
    crib_fail(err, ENOTSUP, "restore: process.terminal: crib-runtime does not checkpoint containers with a terminal");
    goto out;
  }
  if ((desc = load_json(image_path, "descriptors.json", err)) == NULL) goto out;
  if ((info = load_json(image_path, "crib-criu.json", err)) == NULL) goto out;
  json_t *ann = json_object_get(spec, "annotations");
  if (ann) st.annotations = json_incref(ann);

  char log_path[PATH_MAX], pid_path[PATH_MAX];
  if (!CRIB_FMT(log_path, "%s/restore.log", work_path) || !CRIB_FMT(pid_path, "%s/restore.pid", work_path)) {
    crib_fail(err, ENAMETOOLONG, "restore.log under `%s`", work_path);
    goto out;
  }
  crib_criu_arg(&a, "criu");
  crib_criu_arg(&a, "restore");
  crib_criu_argf(&a, "--images-dir=%s", image_path);
  crib_criu_argf(&a, "--work-dir=%s", work_path);
  crib_criu_argf(&a, "--log-file=%s", log_path);
  crib_criu_arg(&a, "-v4");
  crib_criu_argf(&a, "--root=%s", st.rootfs);
  crib_criu_arg(&a, "--restore-detached");
  crib_criu_argf(&a, "--pidfile=%s", pid_path);
  crib_criu_arg(&a, "--manage-cgroups=ignore");
  if (tcp) crib_criu_arg(&a, "--tcp-established");
  if (locks) crib_criu_arg(&a, "--file-locks");
  if (json_is_true(json_object_get(info, "shellJob"))) crib_criu_arg(&a, "--shell-job");

  /* Everything the dump declared external comes from the new bundle, or the restore cannot be. */
  json_t *ext = json_object_get(info, "externalMounts"), *e;
  size_t k, n;
  json_array_foreach(ext, k, e) {
    const char *dest = json_string_value(e);
    if (!dest) continue;
    const char *src = mount_source(spec, dest);
    if (!src) {
      crib_fail(err, ENOENT, "restore: the checkpoint had a bind mount at `%s` and the bundle's spec has none there", dest);
      goto out;
    }
    crib_criu_argf(&a, "--external=mnt[%s]:%s", dest, src);
  }
  /* And the other way: criu rebuilds the mount tree from its images, so a bind mount the new
   * spec adds (a volume the checkpointed container did not have) would silently be missing. */
  json_t *m;
  json_array_foreach(json_object_get(spec, "mounts"), k, m) {
    const char *dest = crib_json_str(m, "destination");
    if (!dest || !crib_criu_is_bind(m)) continue;
    bool known = false;
    json_array_foreach(ext, n, e) known = known || (json_is_string(e) && strcmp(json_string_value(e), dest) == 0);
    if (!known) {
      crib_fail(err, ENOTSUP, "restore: the bundle's spec binds `%s`, which the checkpointed container did not have: a restore cannot add mounts", dest);
      goto out;
    }
  }
  /* The namespaces B's spec joins by path are the NEW pod's: the restored tree joins them
   * (criu --join-ns, as runc restores), rather than getting copies of the checkpointed
   * container's (its old pod's hostname, its old pod's SysV IPC). The network namespace is the
   * external one below. */
  json_t *nss = json_object_get(json_object_get(spec, "linux"), "namespaces"), *ns;
  const char *uts_path = NULL;
  uts_names uts;
  json_array_foreach(nss, n, ns) {
    const char *t = crib_json_str(ns, "type"), *p = crib_json_str(ns, "path");
    if (!t || !p || !p[0]) continue;
    if (strcmp(t, "uts") == 0) uts_path = p;
    if (strcmp(t, "ipc") == 0 || strcmp(t, "uts") == 0) {
      /* criu reads what follows a comma as extra options of the namespace. */
      if (strchr(p, ',')) {
        crib_fail(err, EINVAL, "restore: the %s namespace path `%s` contains a comma, which criu --join-ns cannot take", t, p);
        goto out;
      }
      crib_criu_argf(&a, "--join-ns=%s:%s", t, p);
    } else if (strcmp(t, "pid") == 0 || strcmp(t, "user") == 0 || strcmp(t, "cgroup") == 0 ||
               strcmp(t, "mount") == 0 || strcmp(t, "time") == 0) {
      /* criu restores the tree in its own PID namespace from its image; joining one (a pod
       * sharing one PID namespace) or a user, cgroup, mount or time namespace is not done here. */
      crib_fail(err, ENOTSUP, "restore: the bundle's spec joins the %s namespace `%s`: a checkpoint can be restored only into new %s namespaces", t, p, t);
      goto out;
    }
  }
  int keep[4];
  size_t nkeep = 0;
  if (json_is_string(json_object_get(info, "netns"))) {
    const char *path = joined_ns(spec, "network");
    if (!path) {
      crib_fail(err, ENOENT, "restore: the checkpoint joined a network namespace and the bundle's spec joins none (linux.namespaces network path)");
      goto out;
    }
    netns_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (netns_fd < 0) {
      crib_fail(err, errno, "open network namespace `%s`", path);
      goto out;
    }
    keep[nkeep++] = netns_fd;
    crib_criu_argf(&a, "--inherit-fd=fd[%d]:%s", netns_fd, json_string_value(json_object_get(info, "netns")));
  }
  for (int fd = 0; fd < 3 && fd < (int)json_array_size(desc); fd++) {
    const char *was = json_string_value(json_array_get(desc, fd));
    if (was && strncmp(was, "pipe:", 5) == 0) crib_criu_argf(&a, "--inherit-fd=fd[%d]:%s", fd, was);
  }

  if (crib_mkdir_p(g->root, 0700, err) < 0) goto out;
  if (mkdir(st.dir, 0700) < 0) {
    if (errno == EEXIST) crib_fail(err, EEXIST, "container `%s` already exists", id);
    else crib_fail(err, errno, "mkdir `%s`", st.dir);
    goto out;
  }
  dir_made = true;
  if (crib_cg_detect(&cg, err) < 0) goto undo;
  json_t *linux_ = json_object_get(spec, "linux");
  if (crib_cg_resolve_path(&cg, crib_json_str(linux_, "cgroupsPath"), id, err) < 0) {
    crib_err_wrap(err, "linux.cgroupsPath");
    goto undo;
  }
  if (crib_cg_create(&cg, err) < 0) goto undo;
  cg_made = true;
  /* Device rules only once criu has restored /dev (its tmpfs nodes are made by mknod), as create
   * applies them only once the init has made /dev. */
  json_t *res = json_object_get(linux_, "resources"), *rest = NULL;
  if (crib_cg_check(res, err) < 0) {
    crib_err_wrap(err, "linux.resources");
    goto undo;
  }
  if (json_is_object(res)) {
    rest = json_deep_copy(res);
    if (rest == NULL) {
      crib_fail(err, ENOMEM, "linux.resources: copy");
      goto undo;
    }
    json_object_del(rest, "devices");
  }
  int applied = crib_cg_apply(&cg, rest, err);
  json_decref(rest);
  if (applied < 0) {
    crib_err_wrap(err, "linux.resources");
    goto undo;
  }
  snprintf(st.cgroup, sizeof st.cgroup, "%s", cg.path);
  if (unlink(pid_path) < 0 && errno != ENOENT) {
    crib_fail(err, errno, "unlink `%s`", pid_path);
    goto undo;
  }
  if (uts_path && in_uts_ns(uts_path, &uts, false, err) < 0) goto undo;
  int restored = crib_criu_run(g->criu, &a, "restore", log_path, &cg, keep, nkeep, err);
  /* Put back also when criu failed after writing the names: criu's error is the one told. */
  if (uts_path) {
    crib_err ue;
    if (in_uts_ns(uts_path, &uts, true, restored < 0 ? &ue : err) < 0 && restored == 0) goto undo;
  }
  if (restored < 0) goto undo;
  json_t *devices;
  if (crib_container_device_rules(linux_, &devices, err) < 0) goto undo;
  if (devices) {
    int r = crib_cg_apply(&cg, devices, err);
    json_decref(devices);
    if (r < 0) {
      crib_err_wrap(err, "linux.resources.devices");
      goto undo;
    }
  }
  char buf[32];
  size_t len;
  if (crib_read_file(pid_path, buf, sizeof buf, &len, err) < 0) goto undo;
  pid = (pid_t)strtol(buf, NULL, 10);
  if (pid <= 0) {
    crib_fail(err, 0, "restore: criu's pid file `%s` holds no pid", pid_path);
    goto undo;
  }
  st.pid = pid;
  if (crib_proc_start_time(pid, &st.start_time, NULL) < 0) {
    crib_fail(err, ESRCH, "restore: the restored process %d is already gone", (int)pid);
    goto undo;
  }
  crib_now_rfc3339(st.created, sizeof st.created);
  if (crib_state_write(&st, err) < 0) goto undo;
  if (pid_file && crib_write_pid_file(pid_file, pid, err) < 0) goto undo;
  rc = 0;
  goto out;
undo: {
  crib_err ue;
  if (pid > 0) kill(pid, SIGKILL);
  if (cg_made) {
    crib_cg_kill_all(&cg, SIGKILL, &ue);
    if (crib_cg_destroy(&cg, &ue) < 0) crib_err_print("crib-runtime: warning", &ue);
  }
  if (dir_made && crib_rm_dir(st.dir, &ue) < 0) crib_err_print("crib-runtime: warning", &ue);
}
out:
  (void)detach;
  if (netns_fd >= 0) close(netns_fd);
  crib_criu_argv_free(&a);
  json_decref(desc);
  json_decref(info);
  json_decref(spec);
  crib_state_free(&st);
  return rc;
}
