/* The child half of create: runs in the forked process, becomes the container init. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "container.h"
#include "exec-fifo.h"
#include "files.h"
#include "hooks.h"
#include "idmap-mount.h"
#include "mount-fd.h"
#include "mount-template.h"
#include "mounts.h"
#include "namespaces.h"
#include "pidns-fork.h"
#include "process.h"
#include "procfs.h"
#include "rootfs-dev.h"
#include "rootfs.h"
#include "seccomp-filter.h"
#include "spec.h"
#include "sync.h"
#include "sysctls.h"
#include "terminal.h"
#include "workdir.h"

static int wait_ack(int fd, crib_err *err) {
  crib_sync_msg m;
  if (crib_sync_recv(fd, &m, NULL, err) < 0) return -1;
  if (m.type != CRIB_SYNC_ACK) return crib_fail(err, 0, "sync: expected ack, got message %d", m.type);
  return 0;
}

/* An stdio fd that is the host's /dev/null is reopened as the container's own /dev/null (runc
 * does the same): criu cannot dump an fd whose file lies on a mount outside the container. */
static int reopen_dev_null(crib_err *err) {
  for (int fd = 0; fd < 3; fd++) {
    struct stat st;
    if (fstat(fd, &st) < 0) {
      if (errno == EBADF) continue;
      return crib_fail(err, errno, "fstat stdio fd %d", fd);
    }
    if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) continue;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return crib_fail(err, errno, "fcntl F_GETFL stdio fd %d", fd);
    int nfd = open("/dev/null", (flags & O_ACCMODE) | O_CLOEXEC);
    /* A rootfs without /dev/null keeps the host's: the container runs, only criu would refuse. */
    if (nfd < 0 && errno == ENOENT) continue;
    if (nfd < 0) return crib_fail(err, errno, "open the container's `/dev/null` for fd %d", fd);
    if (dup2(nfd, fd) < 0) {
      int e = errno;
      close(nfd);
      return crib_fail(err, e, "dup2 the container's `/dev/null` onto fd %d", fd);
    }
    close(nfd);
  }
  return 0;
}

/* The pty: the master goes to the caller, the peer (*peer) becomes the stdio of the process that
 * execs, later (crib_pty_become_stdio: it makes its caller a session leader, whose exit would
 * hang up the terminal, so it must not be the setup process that forks the init). */
static int setup_terminal(crib_init_ctx *c, int proc, int *peer, crib_err *err) {
  int master;
  if (crib_pty_open(proc, &master, peer, err) < 0)
    return crib_err_wrap(err, "process.terminal (is devpts mounted on /dev/pts?)");
  json_t *process = json_object_get(c->spec, "process");
  if (crib_pty_set_size(master, json_object_get(process, "consoleSize"), err) < 0 ||
      crib_dev_console(*peer, err) < 0 ||
      crib_sync_send(c->sync_fd, CRIB_SYNC_PTY, 0, master, err) < 0) {
    close(master);
    close(*peer);
    *peer = -1;
    return -1;
  }
  close(master);
  return 0;
}

/* Parked until `start` writes a byte into the fifo. Until create confirms (DONE, sent once
 * state.json exists) we also watch the sync socket: if create dies first, nothing would ever
 * know about us, so we leave instead of lingering. */
static void park(int sync_fd, int fifo_fd) {
  bool confirmed = false, started = false;
  while (!confirmed || !started) {
    struct pollfd p[2] = {{.fd = fifo_fd, .events = started ? 0 : POLLIN},
                          {.fd = confirmed ? -1 : sync_fd, .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(1);
    }
    if (p[1].revents) {
      crib_sync_msg m;
      crib_err e;
      if (crib_sync_recv(sync_fd, &m, NULL, &e) < 0 || m.type != CRIB_SYNC_DONE) _exit(1);
      confirmed = true;
      close(sync_fd);
    }
    if (p[0].revents & POLLIN) {
      char b;
      if (read(fifo_fd, &b, 1) == 1) started = true;
    }
  }
  close(fifo_fd);
}

/* After the park nobody reads the sync socket: report to `start` and the container's log. */
static void start_failed(int result_fd, const crib_err *e, int code) __attribute__((noreturn));
static void start_failed(int result_fd, const crib_err *e, int code) {
  crib_exec_result_failed(result_fd, e);
  crib_err_print("crib-runtime", e);
  _exit(code);
}

/* Our pid as the runtime sees it (for hook state), read while /proc is still the host's. */
static pid_t host_pid;

static pid_t read_host_pid(void) {
  char self[32] = "";
  return readlink("/proc/self", self, sizeof self - 1) > 0 ? (pid_t)atoi(self) : getpid();
}

/* A hook run by the init itself, in the container's namespaces. */
static int run_container_hook(crib_init_ctx *c, const char *stage, const char *status, crib_err *err) {
  json_t *state = crib_hook_state(c->id, c->bundle, host_pid, json_object_get(c->spec, "annotations"), status);
  int rc = crib_hooks_run(c->spec, stage, state, err);
  json_decref(state);
  return rc;
}

/* Whether the spec mounts a sysfs. */
static bool mounts_sysfs(json_t *spec) {
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(spec, "mounts"), i, m) {
    const char *type = crib_json_str(m, "type");
    if (type && strcmp(type, "sysfs") == 0) return true;
  }
  return false;
}

/* A user namespace may mount a procfs or sysfs only where one is already fully visible in its
 * mount namespace (the kernel's mount_too_revealing), as the host's are in a copy of the host's
 * table. In the copy of the template, the copies of the host's /proc and /sys (taken, without
 * what is mounted below them, before the template was entered) go on its directories for them,
 * out of the rootfs. They go with the template's root at pivot_root; with --no-pivot they stay
 * below the rootfs, which is stacked on the template's root and so hides it from every path
 * walk (".." included: a walk always continues into the topmost mount), as the host's whole
 * table stayed before. */
static int reveal_proc_and_sys(int visible[2], crib_err *err) {
  static const char *const at[2] = {CRIB_MOUNT_TEMPLATE_PROC, CRIB_MOUNT_TEMPLATE_SYS};
  for (int i = 0; i < 2; i++) {
    int t = open(at[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (t < 0) return crib_fail(err, errno, "open `%s` of the template mount namespace", at[i]);
    int rc = crib_mnt_attach(visible[i], t, at[i], err);
    close(t);
    close(visible[i]);
    visible[i] = -1;
    if (rc < 0) return -1;
  }
  return 0;
}

static int init_run(crib_init_ctx *c, crib_err *err) {
  json_t *spec = c->spec;
  json_t *process = json_object_get(spec, "process");
  /* If create dies mid-setup, do not linger. Reset before parking: create exits then. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) return crib_fail(err, errno, "prctl PDEATHSIG");
  host_pid = read_host_pid();
  /* Join our cgroup first, while we are still the host's root in every namespace. */
  int self_cg = c->in_cgroup ? 0 : crib_cg_enter_self(c->cg, err);
  if (self_cg < 0) return -1;
  bool new_userns = c->new_flags & CLONE_NEWUSER;
  bool userns = new_userns || c->join_userns;
  bool in_template = c->mnt_template >= 0;
  bool v2 = c->cg->mode == CRIB_CG_V2;
  /* Idmapped mounts, and with a user namespace or the template mount namespace every bind and
   * the rootfs itself (and the v1 cgroup directories), are reached now, as host root in the
   * host's mount namespace: attached in the rootfs later (idmap-mount.h, mount-template.h). */
  unsigned long root_prop;
  if (crib_rootfs_propagation(spec, &root_prop, err) < 0) return -1;
  crib_premounts pre = {0};
  crib_v1_cgroups v1 = {0};
  if (crib_premounts_prepare(spec, c->bundle, userns || in_template, root_prop, &pre, err) < 0) return -1;
  int rootfs_mfd = -1;
  if (userns || in_template) {
    rootfs_mfd = crib_rootfs_clone(c->rootfs, root_prop, err);
    if (rootfs_mfd < 0) return crib_err_wrap(err, "rootfs `%s`", c->rootfs);
  }
  /* Without the template, the rootfs' own dir is our cwd (carried into the new mount namespace)
   * and its clone is what gets attached there: neither needs its path walked by the mapped root. */
  if (userns && !in_template && chdir(c->rootfs) < 0) return crib_fail(err, errno, "chdir rootfs `%s`", c->rootfs);
  if (in_template && !v2 && crib_v1_cgroups_clone(c->cg->path, root_prop, &v1, err) < 0) return -1;
  /* In the template, a user namespace's root has none of the host's paths it would otherwise
   * take things from: its device nodes (mknod is refused there), the host's /sys (a sysfs of
   * its own is refused when it does not own its network namespace) and /proc (the procfs
   * handle's fallback, procfs.h). Copied now, as host root. */
  crib_host_nodes host_nodes = {0};
  int host_sys = -1, host_proc = -1;
  int visible[2] = {-1, -1}; /* see reveal_proc_and_sys */
  if (userns && in_template) {
    if (crib_dev_clone_host_nodes(spec, &host_nodes, err) < 0) return -1;
    if (mounts_sysfs(spec) && (host_sys = crib_mnt_clone(AT_FDCWD, "/sys", true, "/sys", err)) < 0) return -1;
    if ((host_proc = crib_procfs_copy(err)) < 0) return -1;
    if ((visible[0] = crib_procfs_copy(err)) < 0) return -1;
    if ((visible[1] = crib_mnt_clone(AT_FDCWD, "/sys", false, "/sys", err)) < 0) return -1;
  }
  /* Entered before any namespace is joined or made: setns into the template needs CAP_SYS_ADMIN
   * over its owner, the host's user namespace, which a user namespace's root does not have. Ours
   * is then a copy of the template's one mount, not of the host's whole table. */
  if (in_template) {
    if (setns(c->mnt_template, CLONE_NEWNS) < 0) return crib_fail(err, errno, "enter the template mount namespace");
    close(c->mnt_template);
    c->mnt_template = -1;
  }
  if (crib_ns_join(c->plan, ~CLONE_NEWPID, err) < 0) return -1;
  crib_ns_plan_close(c->plan);
  /* From here on the only fds beyond the preserved ones are those we talk through (and the PID
   * namespace to enter last): nothing our caller leaked to us is reachable through
   * /proc/self/fd during setup. */
  bool outside = c->pidns_fd >= 0; /* of the PID namespace we join, until the fork at the end */
  int keep[128 + CRIB_MAX_V1_HIERARCHIES + CRIB_MAX_HOST_NODES + 4] = {
      c->sync_fd, c->fifo_fd, c->result_fd, outside ? c->pidns_fd : -1, rootfs_mfd, host_sys, host_proc,
      visible[0], visible[1]};
  size_t nkeep = 9;
  for (size_t i = 0; pre.fd && i < pre.n; i++) {
    if (pre.fd[i] < 0) continue;
    if (nkeep == 128) return crib_fail(err, E2BIG, "more than 121 bind mounts");
    keep[nkeep++] = pre.fd[i];
  }
  for (size_t i = 0; i < v1.n; i++) keep[nkeep++] = v1.fd[i];
  for (size_t i = 0; i < host_nodes.n; i++) keep[nkeep++] = host_nodes.fd[i];
  if (crib_close_fds_from(3 + c->preserve_fds, keep, nkeep, err) < 0) return -1;
  if (new_userns && unshare(CLONE_NEWUSER) < 0) return crib_fail(err, errno, "unshare user namespace");

  /* The parent writes the id maps and, unless we moved ourselves (v1), moves us into the
   * cgroup, which costs an RCU grace period (see cgroup/cgroup-enter.c). Unless we need that
   * done first (id maps to become root in a new user namespace; a cgroup2 mount that must see
   * our cgroup namespace), it happens while we build the rootfs, and we wait just before the
   * cgroup namespace (whose root is the cgroup we are in). */
  if (crib_sync_send(c->sync_fd, CRIB_SYNC_HELLO, self_cg == 0, -1, err) < 0) return -1;
  bool acked = false;
  if (new_userns || v2) {
    if (wait_ack(c->sync_fd, err) < 0) return -1;
    acked = true;
  }
  if (userns) {
    if (setresgid(0, 0, 0) < 0) return crib_fail(err, errno, "become gid 0 in the user namespace (do gidMappings map 0?)");
    if (setresuid(0, 0, 0) < 0) return crib_fail(err, errno, "become uid 0 in the user namespace (do uidMappings map 0?)");
  }
  int rest = c->new_flags & ~(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWTIME | (acked ? 0 : CLONE_NEWCGROUP));
  if (rest && unshare(rest) < 0) return crib_fail(err, errno, "unshare namespaces (flags 0x%x)", rest);
  if (visible[0] >= 0 && reveal_proc_and_sys(visible, err) < 0) return -1;
  /* Every /proc read and write from here on goes through a procfs of our own (procfs.h), opened
   * before anything of the container is mounted. */
  int proc = crib_procfs_open_from(&host_proc, err);
  if (host_proc >= 0) close(host_proc);
  if (proc < 0) return -1;
  if (c->join_userns && crib_ns_check_joined_maps(spec, proc, err) < 0) return -1;
  if ((c->new_flags & CLONE_NEWTIME) && crib_ns_enter_new_time(spec, proc, err) < 0) return -1;
  /* With a new user namespace and a new PID namespace, the PID namespace is unshared here, so
   * that the user namespace owns it, and entered by forking: the middle process leaves. */
  if (userns && (c->new_flags & CLONE_NEWPID)) {
    if (unshare(CLONE_NEWPID) < 0) return crib_fail(err, errno, "unshare pid namespace");
    if (crib_fork_into_pidns(c->sync_fd, &host_pid, err) < 0) return -1;
  }

  char warn[2048];
  if (crib_process_oom_score(process, proc, warn, sizeof warn, err) < 0) return -1;
  if (warn[0]) crib_sync_send_warning(c->sync_fd, warn);
  if (crib_process_lsm(process, &c->lsm, proc, warn, sizeof warn, err) < 0) return -1;
  if (warn[0]) crib_sync_send_warning(c->sync_fd, warn);

  /* Outside the PID namespace we join, the container's /proc is a procfs of that one. */
  crib_rootfs_cfg rc = {.spec = spec, .bundle = c->bundle, .rootfs = c->rootfs, .root_prop = root_prop,
                        .userns = userns, .no_pivot = c->no_pivot, .cgroup_path = c->cg->path, .cgroup_v2 = v2,
                        .proc_pidns = c->pidns_fd, .pre = &pre, .rootfs_mfd = rootfs_mfd, .rootfd = -1,
                        .in_template = in_template, .v1 = in_template ? &v1 : NULL,
                        .host_nodes = userns && in_template ? &host_nodes : NULL, .host_sys = &host_sys,
                        .mount_label = c->lsm.selinux ? crib_json_str(json_object_get(spec, "linux"), "mountLabel") : NULL};
  if (crib_hooks_has(spec, "prestart") || crib_hooks_has(spec, "createRuntime")) {
    /* The parent runs these in the runtime namespace, now that ours exist. */
    if (!acked) {
      if (wait_ack(c->sync_fd, err) < 0) return -1;
      if ((c->new_flags & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0)
        return crib_fail(err, errno, "unshare cgroup namespace");
      acked = true;
    }
    if (crib_sync_send(c->sync_fd, CRIB_SYNC_HOOKS, 0, -1, err) < 0) return -1;
    if (wait_ack(c->sync_fd, err) < 0) return -1;
  }
  int built = crib_rootfs_build(&rc, err);
  crib_premounts_close(&pre);
  crib_v1_cgroups_close(&v1);
  crib_host_nodes_close(&host_nodes);
  if (host_sys >= 0) close(host_sys);
  if (built < 0) return -1;
  if (crib_hooks_has(spec, "createContainer") && run_container_hook(c, "createContainer", "creating", err) < 0)
    return -1;
  if (crib_rootfs_pivot(&rc, err) < 0) return -1;
  if (crib_sysctls_apply(spec, proc, err) < 0) return -1;
  int tty_peer = -1;
  if (c->terminal && setup_terminal(c, proc, &tty_peer, err) < 0) return -1;
  /* Without a terminal, a session of its own too (runc's init always has one): criu dumps a
   * container only when its session leader is inside it (cmd-checkpoint.c). */
  if (!c->terminal && setsid() < 0) return crib_fail(err, errno, "setsid");
  if (!c->terminal && reopen_dev_null(err) < 0) return -1;
  if (crib_rootfs_finish(&rc, err) < 0) return -1;
  close(proc);

  if (!acked) {
    if (wait_ack(c->sync_fd, err) < 0) return -1;
    if ((c->new_flags & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0)
      return crib_fail(err, errno, "unshare cgroup namespace");
  }

  const char *hostname = crib_json_str(spec, "hostname");
  if (hostname && *hostname && sethostname(hostname, strlen(hostname)) < 0)
    return crib_fail(err, errno, "sethostname `%s`", hostname);
  const char *domain = crib_json_str(spec, "domainname");
  if (domain && *domain && setdomainname(domain, strlen(domain)) < 0)
    return crib_fail(err, errno, "setdomainname `%s`", domain);

  if (crib_enter_workdir(process, err) < 0) return -1;
  if (crib_process_rlimits(process, err) < 0) return -1;

  scmp_filter_ctx filter;
  if (crib_seccomp_compile(json_object_get(json_object_get(spec, "linux"), "seccomp"), &filter, err) < 0)
    return -1;
  /* Before the filter (it may refuse setns) and while we hold CAP_SYS_ADMIN: only our children
   * enter it (the fork below). */
  if (outside) {
    if (setns(c->pidns_fd, CLONE_NEWPID) < 0) return crib_fail(err, errno, "setns the pid namespace to join");
    close(c->pidns_fd);
  }
  bool nnp = crib_json_bool(process, "noNewPrivileges", false);
  /* Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load while we still have it
   * (then it is inherited by the fork below, which the profile must allow, as any that lets a
   * container start a process does). */
  if (!nnp && crib_seccomp_load(filter, err) < 0) return -1;
  if (crib_process_identity(process, warn, sizeof warn, err) < 0) return -1;
  if (warn[0]) crib_sync_send_warning(c->sync_fd, warn);
  static char exe[PATH_MAX];
  if (crib_process_find(process, exe, sizeof exe, err) < 0) return crib_err_wrap(err, "process.args[0]");
  if (crib_process_finish(process, err) < 0) return -1;
  char **argv = crib_process_strv(json_object_get(process, "args"));
  char **envp = crib_process_strv(json_object_get(process, "env"));
  if (!argv || !envp) return crib_fail(err, ENOMEM, "argv");

  /* Set up outside the PID namespace we join (container.h): the process that enters it, forked
   * now, has the container's credentials, mount namespace and root from its first instruction,
   * and no fd of the host but its stdio. It becomes the init. */
  if (outside && crib_fork_into_pidns(c->sync_fd, &host_pid, err) < 0) return -1;
  if (nnp && crib_seccomp_load(filter, err) < 0) return -1;
  if (filter) seccomp_release(filter);
  if (prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) < 0) return crib_fail(err, errno, "prctl PDEATHSIG");
  if (tty_peer >= 0 && crib_pty_become_stdio(tty_peer, err) < 0) return -1;
  int talk[] = {c->sync_fd, c->fifo_fd, c->result_fd};
  if (crib_close_fds_from(3 + c->preserve_fds, talk, 3, err) < 0) return -1;
  if (crib_sync_send(c->sync_fd, CRIB_SYNC_PARKED, 0, -1, err) < 0) return -1;
  park(c->sync_fd, c->fifo_fd);
  /* From here on `start` waits for our report on result_fd (exec-fifo.h); a failure goes there
   * and to stderr, which is the container's log. */
  crib_err e = {0};
  if (crib_hooks_has(spec, "startContainer") && run_container_hook(c, "startContainer", "running", &e) < 0)
    start_failed(c->result_fd, &e, 1);
  /* park closed both sync channels: the container's program gets stdio and the preserved fds
   * only (result_fd is close-on-exec), and no path in execve can go through a leftover fd. */
  int keep_result[] = {c->result_fd};
  if (crib_close_fds_from(3 + c->preserve_fds, keep_result, 1, &e) < 0) start_failed(c->result_fd, &e, 1);
  if (crib_exec_result_reached(c->result_fd, &e) < 0) start_failed(c->result_fd, &e, 1);
  execve(exe, argv, envp);
  crib_fail(&e, errno, "exec `%s`", exe);
  start_failed(c->result_fd, &e, 127);
}

void crib_container_init(crib_init_ctx *c) {
  crib_err err = {0};
  init_run(c, &err);
  crib_sync_send_error(c->sync_fd, &err);
  _exit(1);
}
