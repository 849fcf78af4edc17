/* `checkpoint --image-path DIR [--work-path DIR] [--leave-running] [--tcp-established]
 * [--file-locks] [--shell-job] ID`: runc's verb, for what crib needs. criu dumps the container's
 * process tree (its init and everything below) into DIR; with --leave-running it keeps running,
 * otherwise criu kills it after the dump. criu's log is dump.log in the work path (default: the
 * image path). What the container shares with the world outside its own namespaces is declared
 * external, as runc does, so that restore can supply it anew (criu.h):
 *   - every bind mount of the spec, by destination (a restore binds the new bundle's source for
 *     the same destination),
 *   - the network namespace, when the spec joins one by path (the pod's pinned namespace),
 *   - the session, when the init is not a session leader (crib's init is in its monitor's
 *     session): --shell-job.
 * Refused with a message saying why: a container that is not running, one with a terminal (its
 * pty lives in the monitor), one that joined a PID or user namespace by path (a pod with a
 * shared PID namespace, a user-namespaced pod: criu dumps a tree from the init of its own PID
 * namespace, and restoring into a joined user namespace is not supported here).
 * The IPC and UTS namespaces are dumped with their content and restored as new ones.
 * criu stops the processes through the container's cgroup freezer when it has one
 * (--freeze-cgroup, as runc passes it), which also means a paused container (`pause`) is dumped
 * as it is and stays paused after a --leave-running dump: criu puts the freezer back the way it
 * found it. Without the freezer, criu would wait forever for a paused process to stop for it.
 * The dump dies with the process that asked for it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "container.h"
#include "criu.h"
#include "crib-atomic-file.h"
#include "files.h"
#include "spec.h"
#include "state.h"

/* What the container joined by path and criu cannot dump as its own: the network namespace
 * (made external, *netns_ino set), a PID or user namespace (refused). */
static int check_namespaces(json_t *spec, ino_t *netns_ino, crib_err *err) {
  *netns_ino = 0;
  json_t *nss = json_object_get(json_object_get(spec, "linux"), "namespaces"), *ns;
  size_t i;
  json_array_foreach(nss, i, ns) {
    const char *type = crib_json_str(ns, "type"), *path = crib_json_str(ns, "path");
    if (!type) continue;
    if (strcmp(type, "user") == 0)
      return crib_fail(err, ENOTSUP, "checkpoint: a container in a user namespace cannot be checkpointed by crib-runtime");
    if (!path || !path[0]) continue;
    if (strcmp(type, "pid") == 0)
      return crib_fail(err, ENOTSUP,
                       "checkpoint: the container joined the PID namespace `%s` (a pod sharing one PID "
                       "namespace): criu dumps a process tree from the init of its own PID namespace",
                       path);
    if (strcmp(type, "network") == 0) {
      struct stat sb;
      if (stat(path, &sb) < 0) return crib_fail(err, errno, "stat network namespace `%s`", path);
      *netns_ino = sb.st_ino;
    }
  }
  return 0;
}

/* descriptors.json: fds 0-2 of the init, as runc records them (criu.h). */
static int write_descriptors(const char *image_path, pid_t pid, crib_err *err) {
  json_t *arr = json_array();
  if (arr == NULL) return crib_fail(err, ENOMEM, "json_array");
  for (int fd = 0; fd < 3; fd++) {
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/%d/fd/%d", (int)pid, fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0) {
      /* A closed stdio fd has nothing to restore. */
      if (errno != ENOENT) {
        json_decref(arr);
        return crib_fail(err, errno, "readlink `%s`", link);
      }
      n = 0;
    }
    target[n] = '\0';
    json_array_append_new(arr, json_string(target));
  }
  char path[PATH_MAX];
  char *s = json_dumps(arr, JSON_COMPACT);
  json_decref(arr);
  if (s == NULL) return crib_fail(err, ENOMEM, "json_dumps");
  int rc = CRIB_FMT(path, "%s/descriptors.json", image_path)
               ? crib_atomic_write_file(path, s, strlen(s), 0600, err)
               : crib_fail(err, ENAMETOOLONG, "descriptors.json under `%s`", image_path);
  free(s);
  return rc;
}

static int write_crib_criu(const char *image_path, bool shell_job, ino_t netns_ino, json_t *mounts,
                           crib_err *err) {
  json_t *o = json_pack("{s:b, s:o, s:O}", "shellJob", shell_job, "netns",
                        netns_ino ? json_string(CRIB_CRIU_NETNS_KEY) : json_null(), "externalMounts",
                        mounts);
  if (o == NULL) return crib_fail(err, ENOMEM, "json_pack");
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  if (s == NULL) return crib_fail(err, ENOMEM, "json_dumps");
  char path[PATH_MAX];
  int rc = CRIB_FMT(path, "%s/crib-criu.json", image_path)
               ? crib_atomic_write_file(path, s, strlen(s), 0600, err)
               : crib_fail(err, ENAMETOOLONG, "crib-criu.json under `%s`", image_path);
  free(s);
  return rc;
}

int crib_cmd_checkpoint(const crib_globals *g, int argc, char **argv, crib_err *err) {
  const char *image_path = NULL, *work_path = NULL;
  bool leave_running = false, tcp = false, locks = false, shell_job = false;
  const crib_opt opts[] = {
      {"image-path", 0, CRIB_OPT_STRING, &image_path},
      {"work-path", 0, CRIB_OPT_STRING, &work_path},
      {"leave-running", 0, CRIB_OPT_FLAG, &leave_running},
      {"tcp-established", 0, CRIB_OPT_FLAG, &tcp},
      {"file-locks", 0, CRIB_OPT_FLAG, &locks},
      {"shell-job", 0, CRIB_OPT_FLAG, &shell_job},
  };
  int i = 0;
  if (crib_parse_flags(argc, argv, &i, opts, sizeof opts / sizeof opts[0], err) < 0) return -1;
  const char *id;
  if (crib_take_id(argc, argv, i, &id, err) < 0) return -1;
  if (!image_path || image_path[0] != '/')
    return crib_fail(err, EINVAL, "checkpoint: --image-path must be an absolute directory");
  /* A dump dies with whoever asked for it (criu with us: criu.c). The daemon pauses a container
   * for its checkpoint, and its start-up after a crash resumes it: a criu still running then
   * would freeze it again when it ends, with no one left to resume it. */
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) return crib_fail(err, errno, "prctl PDEATHSIG");
  if (getppid() != parent) return crib_fail(err, 0, "checkpoint: the process that asked for it is gone");
  if (!work_path) work_path = image_path;
  if (work_path[0] != '/') return crib_fail(err, EINVAL, "checkpoint: --work-path must be absolute");

  crib_state st;
  if (crib_state_read(g->root, id, &st, err) < 0) return -1;
  int rc = -1;
  json_t *spec = NULL, *ext = json_array();
  crib_criu_argv a = {0};
  if (ext == NULL) {
    crib_fail(err, ENOMEM, "json_array");
    goto out;
  }
  crib_status s = crib_state_status(&st);
  if (s != CRIB_RUNNING) {
    crib_fail(err, 0, "checkpoint: container `%s` is %s, not running", id, crib_status_name(s));
    goto out;
  }
  spec = crib_spec_load(st.bundle, err);
  if (!spec) goto out;
  if (crib_json_bool(json_object_get(spec, "process"), "terminal", false)) {
    crib_fail(err, ENOTSUP, "checkpoint: container `%s` has a terminal, which crib-runtime cannot checkpoint (its pty is held outside the container)", id);
    goto out;
  }
  ino_t netns_ino;
  if (check_namespaces(spec, &netns_ino, err) < 0) goto out;
  if (crib_mkdir_p(image_path, 0700, err) < 0 || crib_mkdir_p(work_path, 0700, err) < 0) goto out;
  /* crib's init stays in its monitor's session: criu must leave the session outside alone. */
  pid_t sid = getsid(st.pid);
  if (sid < 0) {
    crib_fail(err, errno, "getsid %d", (int)st.pid);
    goto out;
  }
  shell_job |= sid != st.pid;

  char log_path[PATH_MAX];
  if (!CRIB_FMT(log_path, "%s/dump.log", work_path)) {
    crib_fail(err, ENAMETOOLONG, "dump.log under `%s`", work_path);
    goto out;
  }
  crib_criu_arg(&a, "criu");
  crib_criu_arg(&a, "dump");
  crib_criu_argf(&a, "--tree=%d", (int)st.pid);
  crib_criu_argf(&a, "--images-dir=%s", image_path);
  crib_criu_argf(&a, "--work-dir=%s", work_path);
  crib_criu_argf(&a, "--log-file=%s", log_path);
  crib_criu_arg(&a, "-v4");
  crib_cgroup cg;
  char freezer[PATH_MAX];
  crib_err no_freezer;
  if (crib_container_cgroup(&st, &cg, err) < 0) goto out;
  if (crib_cg_freezer_dir(&cg, freezer, sizeof freezer, &no_freezer) == 0)
    crib_criu_argf(&a, "--freeze-cgroup=%s", freezer);
  if (leave_running) crib_criu_arg(&a, "--leave-running");
  if (tcp) crib_criu_arg(&a, "--tcp-established");
  if (locks) crib_criu_arg(&a, "--file-locks");
  if (shell_job) crib_criu_arg(&a, "--shell-job");
  if (netns_ino) crib_criu_argf(&a, "--external=net[%llu]:%s", (unsigned long long)netns_ino, CRIB_CRIU_NETNS_KEY);
  json_t *mounts = json_object_get(spec, "mounts"), *m;
  size_t k;
  json_array_foreach(mounts, k, m) {
    const char *dest = crib_json_str(m, "destination");
    if (!dest || !crib_criu_is_bind(m)) continue;
    crib_criu_argf(&a, "--external=mnt[%s]:%s", dest, dest);
    json_array_append_new(ext, json_string(dest));
  }
  /* Read before the dump: without --leave-running the init is gone after it. */
  if (write_descriptors(image_path, st.pid, err) < 0) goto out;
  if (crib_criu_run(g->criu, &a, "dump", log_path, NULL, NULL, 0, err) < 0) goto out;
  if (write_crib_criu(image_path, shell_job, netns_ino, ext, err) < 0) goto out;
  rc = 0;
out:
  crib_criu_argv_free(&a);
  json_decref(ext);
  json_decref(spec);
  crib_state_free(&st);
  return rc;
}
