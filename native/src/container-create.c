/* The parent half of create. Every resource is undone in reverse when a later step fails, so a
 * failed create leaves no state dir, fifo, cgroup or process behind (mounts die with the
 * child's mount namespace). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container.h"
#include "exec-fifo.h"
#include "files.h"
#include "hooks.h"
#include "mount-template.h"
#include "namespaces.h"
#include "pidns-fork.h"
#include "procfs.h"
#include "rootfs-dev.h"
#include "spec.h"
#include "sync.h"
#include "terminal.h"

typedef struct create_run {
  bool dir_made, cg_made;
  crib_cgroup cg;
  pid_t child, init;
  int sync[2];
  int fifo_fd, result_fd;
  int pidns_fd; /* the PID namespace the child enters last (container.h), or -1 */
  int mnt_template; /* the template mount namespace (container.h), or -1 */
} create_run;

static void undo(create_run *r, const crib_state *st) {
  crib_err e;
  if (r->init > 0) kill(r->init, SIGKILL);
  if (r->child > 0 && r->child != r->init) kill(r->child, SIGKILL);
  if (r->cg_made) crib_cg_kill_all(&r->cg, SIGKILL, &e);
  /* We are a subreaper: both the middle process and init are ours to reap. */
  if (r->child > 0) waitpid(r->child, NULL, 0);
  if (r->init > 0 && r->init != r->child) waitpid(r->init, NULL, 0);
  if (r->cg_made && crib_cg_destroy(&r->cg, &e) < 0) crib_err_print("crib-runtime: warning", &e);
  if (r->dir_made && crib_rm_dir(st->dir, &e) < 0) crib_err_print("crib-runtime: warning", &e);
}

/* Talk with the child until it is parked. */
static int converse(create_run *r, json_t *spec, const crib_create_opts *o, const char *st_bundle,
                    bool userns, crib_err *err) {
  for (;;) {
    crib_sync_msg m;
    int fd = -1;
    if (crib_sync_recv(r->sync[0], &m, &fd, err) < 0) return -1;
    switch (m.type) {
    case CRIB_SYNC_HELLO:
      /* The child may fail and exit meanwhile (it does not wait for us unless it must). */
      /* value 1: the child already moved itself into the cgroup. */
      if ((m.value != 1 && crib_cg_enter(&r->cg, r->child, err) < 0) ||
          (userns && crib_ns_write_id_maps(r->child, spec, err) < 0) ||
          crib_sync_send(r->sync[0], CRIB_SYNC_ACK, 0, -1, err) < 0) {
        crib_sync_prefer_child_error(r->sync[0], err);
        return -1;
      }
      break;
    case CRIB_SYNC_PID:
      if (r->init > 0) return crib_fail(err, 0, "sync: a second pid reported (%d)", m.value);
      if (crib_check_reported_pid((pid_t)m.value, r->child, err) < 0) return -1;
      r->init = (pid_t)m.value;
      break;
    case CRIB_SYNC_HOOKS: {
      pid_t pid = r->init > 0 ? r->init : r->child;
      json_t *state = crib_hook_state(o->id, st_bundle, pid, json_object_get(spec, "annotations"), "creating");
      int rc = crib_hooks_run(spec, "prestart", state, err);
      if (rc == 0) rc = crib_hooks_run(spec, "createRuntime", state, err);
      json_decref(state);
      if (rc < 0 || crib_sync_send(r->sync[0], CRIB_SYNC_ACK, 0, -1, err) < 0) return -1;
      break;
    }
    case CRIB_SYNC_PTY: {
      if (fd < 0) return crib_fail(err, 0, "sync: pty message without a fd");
      int rc = crib_console_socket_send(o->console_socket, fd, "pty", err);
      close(fd);
      if (rc < 0) return -1;
      break;
    }
    case CRIB_SYNC_WARNING:
      fprintf(stderr, "crib-runtime: %s\n", m.text);
      break;
    case CRIB_SYNC_ERROR:
      err->errnum = m.errnum;
      snprintf(err->msg, sizeof err->msg, "%s", m.text);
      return -1;
    case CRIB_SYNC_PARKED:
      if (fd >= 0) close(fd);
      return 0;
    default:
      return crib_fail(err, 0, "sync: unexpected message %d", m.type);
    }
  }
}

/* The device rules, as {"devices": [...]} in *out, or *out NULL when the spec asks for no
 * device policy (the cgroup then keeps what it inherits). The spec's rules come first, then
 * access to the nodes every container gets, as runc adds them (without these a deny-all spec
 * breaks /dev): null, zero, full, random, urandom, tty, console, ptmx and pts, the list
 * containerd and Docker give every container. Not tun/tap (c 10:200): containerd and Docker
 * dropped it, runc 1.2.0 too (1.2.4 put it back for users who mknod it themselves); a
 * container that needs it names it as a device. linux.devices get no rule of their own: their
 * access is what linux.resources.devices says, so a device asked for "r" stays read-only. */
int crib_container_device_rules(json_t *linux_, json_t **out, crib_err *err) {
  *out = NULL;
  json_t *rules = json_object_get(json_object_get(linux_, "resources"), "devices");
  if (!json_is_array(rules)) return 0;
  rules = json_deep_copy(rules);
  *out = rules ? json_pack("{s:o}", "devices", rules) : NULL;
  if (*out == NULL) return crib_fail(err, ENOMEM, "linux.resources.devices: copy the rules");
  static const struct { const char *type; int major, minor; } defaults[] = {
      {"c", 1, 3}, {"c", 1, 5}, {"c", 1, 7}, {"c", 1, 8}, {"c", 1, 9},
      {"c", 5, 0}, {"c", 5, 1}, {"c", 5, 2}, {"c", 136, -1}};
  for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
    json_t *r = json_pack("{s:b, s:s, s:I, s:s}", "allow", 1, "type", defaults[i].type, "major",
                          (json_int_t)defaults[i].major, "access", "rwm");
    if (r != NULL && defaults[i].minor >= 0 &&
        json_object_set_new(r, "minor", json_integer(defaults[i].minor)) < 0) {
      json_decref(r);
      r = NULL;
    }
    if (r == NULL || json_array_append_new(rules, r) < 0) {
      json_decref(*out);
      *out = NULL;
      return crib_fail(err, ENOMEM, "linux.resources.devices: add the default rules");
    }
  }
  return 0;
}

/* Enforce the device rules. Called once the child has built the rootfs and parked, before the
 * container's process can run: the runtime must mknod every linux.devices node (mknod needs
 * "m" in the device cgroup), and a device given "r" or "rw" must not get "m" for that. runc
 * also sets device rules only after its init has set up the rootfs. */
static int apply_device_rules(const create_run *r, json_t *linux_, crib_err *err) {
  json_t *res;
  if (crib_container_device_rules(linux_, &res, err) < 0) return -1;
  if (res == NULL) return 0;
  int rc = crib_cg_apply(&r->cg, res, err);
  json_decref(res);
  return rc < 0 ? crib_err_wrap(err, "linux.resources.devices") : 0;
}

static int prepare(const crib_create_opts *o, json_t *spec, crib_state *st, create_run *r,
                   crib_err *err) {
  if (crib_mkdir_p(o->root, 0700, err) < 0) return -1;
  if (mkdir(st->dir, 0700) < 0) {
    if (errno == EEXIST) return crib_fail(err, EEXIST, "container `%s` already exists", o->id);
    return crib_fail(err, errno, "mkdir `%s`", st->dir);
  }
  r->dir_made = true;
  if (crib_cg_detect(&r->cg, err) < 0) return -1;
  json_t *linux_ = json_object_get(spec, "linux");
  if (crib_cg_resolve_path(&r->cg, crib_json_str(linux_, "cgroupsPath"), o->id, err) < 0)
    return crib_err_wrap(err, "linux.cgroupsPath");
  if (crib_cg_create(&r->cg, err) < 0) return -1;
  r->cg_made = true;
  /* Everything is checked now, devices too; device rules are applied later (apply_device_rules). */
  json_t *res = json_object_get(linux_, "resources");
  if (crib_cg_check(res, err) < 0) return crib_err_wrap(err, "linux.resources");
  json_t *rest = NULL;
  if (json_is_object(res)) {
    rest = json_deep_copy(res);
    if (rest == NULL) return crib_fail(err, ENOMEM, "linux.resources: copy");
    json_object_del(rest, "devices"); /* -1 when there is none: nothing to remove */
  }
  int applied = crib_cg_apply(&r->cg, rest, err);
  json_decref(rest);
  if (applied < 0) return crib_err_wrap(err, "linux.resources");
  snprintf(st->cgroup, sizeof st->cgroup, "%s", r->cg.path);
  /* The child's read of exec.fifo then blocks until `start` writes. */
  return crib_exec_fifos_make(st->dir, &r->fifo_fd, &r->result_fd, err);
}

/* A PID namespace to join (a pod's, shared by its containers): the child is set up outside it
 * and forks into it last (container.h), which needs a procfs of that namespace made from outside
 * (procfs's pidns option, Linux 6.15). Without it, or with a new user namespace (which would
 * have to own a PID namespace it joins), the old order: we enter it here, so the child is born
 * in it and set up there. */
static int join_pid_ns(const crib_ns_plan *plan, bool userns, create_run *r, crib_err *err) {
  for (int i = 0; i < plan->n_join; i++) {
    if (plan->join_flag[i] != CLONE_NEWPID) continue;
    if (!userns && crib_procfs_pidns_supported(plan->join_fd[i])) {
      r->pidns_fd = fcntl(plan->join_fd[i], F_DUPFD_CLOEXEC, 3);
      if (r->pidns_fd < 0) return crib_fail(err, errno, "dup pid namespace fd `%s`", plan->join_path[i]);
      return 0;
    }
    if (!userns)
      fprintf(stderr, "crib-runtime: warning: this kernel cannot mount a procfs for the pid namespace "
              "`%s` from outside it (procfs pidns=, Linux 6.15): the container's init joins it before "
              "its setup, where a process of that namespace with CAP_SYS_PTRACE could reach it\n",
              plan->join_path[i]);
    /* Joining a PID namespace only affects children: do it here, before forking. */
    if (setns(plan->join_fd[i], CLONE_NEWPID) < 0)
      return crib_fail(err, errno, "setns pid namespace `%s`", plan->join_path[i]);
  }
  return 0;
}

int crib_container_create(const crib_create_opts *o, crib_state *st, crib_err *err) {
  memset(st, 0, sizeof *st);
  create_run r = {.sync = {-1, -1}, .fifo_fd = -1, .result_fd = -1, .pidns_fd = -1, .mnt_template = -1};
  crib_ns_plan plan = {0};
  json_t *spec = NULL;
  int rc = -1;

  if (crib_state_path(o->root, o->id, st->dir, sizeof st->dir, err) < 0) return -1;
  snprintf(st->id, sizeof st->id, "%s", o->id);
  if (!realpath(o->bundle ? o->bundle : ".", st->bundle))
    return crib_fail(err, errno, "bundle `%s`", o->bundle ? o->bundle : ".");
  spec = crib_spec_load(st->bundle, err);
  if (!spec) return -1;
  if (crib_spec_rootfs(spec, st->bundle, st->rootfs, sizeof st->rootfs, err) < 0) goto out;
  if (crib_ns_plan_init(&plan, spec, err) < 0) goto out;
  bool has_mnt = plan.new_flags & CLONE_NEWNS;
  for (int i = 0; i < plan.n_join; i++) has_mnt |= plan.join_flag[i] == CLONE_NEWNS;
  if (!has_mnt) {
    crib_fail(err, 0, "linux.namespaces: a mount namespace is required");
    goto out;
  }
  json_t *process = json_object_get(spec, "process");
  bool terminal = crib_json_bool(process, "terminal", false);
  if (terminal && !o->console_socket) {
    crib_fail(err, 0, "process.terminal is set: --console-socket is required");
    goto out;
  }
  json_t *ann = json_object_get(spec, "annotations");
  if (ann) st->annotations = json_incref(ann);

  if (prepare(o, spec, st, &r, err) < 0) goto undo;
  if (crib_sync_pair(r.sync, err) < 0) goto undo;
  bool new_userns = plan.new_flags & CLONE_NEWUSER;
  bool join_userns = false;
  for (int i = 0; i < plan.n_join; i++) join_userns |= plan.join_flag[i] == CLONE_NEWUSER;
  /* In a user namespace, new or joined, the container's PID namespace must be made inside it
   * (only then may the container mount its procfs): the child unshares it after entering. */
  bool userns = new_userns || join_userns;
  if (join_pid_ns(&plan, userns, &r, err) < 0) goto undo;
  if ((userns || r.pidns_fd >= 0) && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
    crib_fail(err, errno, "prctl PR_SET_CHILD_SUBREAPER");
    goto undo;
  }
  /* Without a new user namespace the init is the clone itself, already in its pid namespace. */
  unsigned long flags = SIGCHLD | (userns ? 0 : (plan.new_flags & CLONE_NEWPID));
  bool in_cgroup;
  crib_lsm_host lsm;
  crib_lsm_probe(&lsm); /* here, in the host's mount namespace */
  /* A createContainer hook runs in the container's namespace before pivot_root and may expect
   * the host's paths there (OCI runtime-spec). A user-namespaced container takes copies of the
   * host's device nodes into the template, one descriptor each: more than CRIB_MAX_HOST_NODES
   * and it is built in a copy of the host's table instead. Without a usable template: the
   * host's. */
  if ((plan.new_flags & CLONE_NEWNS) && !crib_hooks_has(spec, "createContainer") &&
      (!userns || crib_dev_count(spec) <= CRIB_MAX_HOST_NODES)) {
    crib_err why;
    r.mnt_template = crib_mount_template_open(o->root, &why);
    if (r.mnt_template < 0 && why.msg[0])
      crib_err_print("crib-runtime: warning: the container's mount namespace is a copy of the host's", &why);
  }
  pid_t pid = crib_cg_fork(&r.cg, flags & ~(unsigned long)SIGCHLD, &in_cgroup);
  if (pid < 0) {
    crib_fail(err, errno, "clone");
    goto undo;
  }
  if (pid == 0) {
    close(r.sync[0]);
    crib_init_ctx c = {.spec = spec, .id = o->id, .bundle = st->bundle, .rootfs = st->rootfs,
                       .sync_fd = r.sync[1], .fifo_fd = r.fifo_fd,
                       .result_fd = r.result_fd, .no_pivot = o->no_pivot,
                       .terminal = terminal, .cg = &r.cg, .in_cgroup = in_cgroup,
                       .preserve_fds = o->preserve_fds,
                       .new_flags = plan.new_flags & ~(userns ? 0 : CLONE_NEWPID), .plan = &plan,
                       .lsm = lsm, .pidns_fd = r.pidns_fd, .join_userns = join_userns,
                       .mnt_template = r.mnt_template};
    crib_container_init(&c);
  }
  r.child = pid;
  /* Otherwise the init is a process the child forks, and reports. */
  if (!(userns && (plan.new_flags & CLONE_NEWPID)) && r.pidns_fd < 0) r.init = pid;
  close(r.sync[1]);
  r.sync[1] = -1;
  if (converse(&r, spec, o, st->bundle, new_userns, err) < 0) goto undo;
  if (r.init <= 0) {
    crib_fail(err, 0, "container process did not report its pid");
    goto undo;
  }
  if (apply_device_rules(&r, json_object_get(spec, "linux"), err) < 0) goto undo;
  if (r.child != r.init) waitpid(r.child, NULL, 0);
  st->pid = r.init;
  if (crib_proc_start_time(st->pid, &st->start_time, NULL) < 0) {
    crib_fail(err, ESRCH, "container process %d died during setup", (int)st->pid);
    goto undo;
  }
  crib_now_rfc3339(st->created, sizeof st->created);
  if (crib_state_write(st, err) < 0) goto undo;
  if (o->pid_file && crib_write_pid_file(o->pid_file, st->pid, err) < 0) goto undo;
  if (crib_sync_send(r.sync[0], CRIB_SYNC_DONE, 0, -1, err) < 0) goto undo;
  rc = 0;
  goto out;
undo:
  undo(&r, st);
out:
  if (r.sync[0] >= 0) close(r.sync[0]);
  if (r.sync[1] >= 0) close(r.sync[1]);
  if (r.fifo_fd >= 0) close(r.fifo_fd);
  if (r.result_fd >= 0) close(r.result_fd);
  if (r.pidns_fd >= 0) close(r.pidns_fd);
  if (r.mnt_template >= 0) close(r.mnt_template);
  crib_ns_plan_close(&plan);
  json_decref(spec);
  return rc;
}
