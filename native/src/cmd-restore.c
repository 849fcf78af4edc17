/* `restore --image-path DIR --bundle B [--work-path DIR] [--detach] [--pid-file F]
 * [--tcp-established] [--file-locks] ID`: runc's verb, for what crib needs. criu restores the
 * process tree that `checkpoint` dumped into DIR, as a new container ID whose bundle B has the
 * rootfs (with the checkpointed container's file changes already applied by the caller) and the
 * spec: the cgroup is B's (made and limited as by create, and criu runs inside it, so the
 * restored tree starts there: --manage-cgroups=ignore), the root is B's rootfs, each bind mount
 * checkpoint declared external is bound from B's mount of the same destination, the network
 * namespace is the one B's spec joins, and the restored init's stdio are ours (descriptors.json:
 * a pipe it had is replaced by the fd we have at that number) — so a monitor that runs restore
 * as it runs create gets the restored process's output on its pipes, and adopts it as its child
 * (criu --restore-detached leaves it to the nearest subreaper). The container is running when
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
#include <sys/stat.h>
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
  size_t k;
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
  if (crib_criu_run(g->criu, &a, "restore", log_path, &cg, keep, nkeep, err) < 0) goto undo;
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
