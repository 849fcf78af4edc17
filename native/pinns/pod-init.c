/* The init of a pod that shares one PID namespace. A middle child joins the pod's pinned
 * net/ipc/uts namespaces and unshares CLONE_NEWPID; its own child becomes PID 1 of the new
 * namespace, reports through a pipe, detaches, and from then on only reaps orphans (which the
 * kernel reparents to it) until SIGTERM or SIGKILL. /proc/<pid>/ns/pid is what containers join.
 * Being in the pod's PID namespace, it is confined before it waits (see confine()). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pinns.h"

enum { MSG_PID = 1, MSG_ERROR = 2 };

struct init_msg {
  int type;
  int pid;
  crib_err err;
};

static void report(int fd, int type, int pid, const crib_err *err) {
  struct init_msg m;
  memset(&m, 0, sizeof m);
  m.type = type;
  m.pid = pid;
  if (err != NULL) m.err = *err;
  /* Nothing more can be done if the parent is gone. */
  (void)crib_write_all(fd, &m, sizeof m);
}

/* The unprivileged identity pod-init keeps: reaping orphans needs no privilege at all. */
#define POD_INIT_ID 65534

/* Every container of the pod shares our PID namespace, and one holding CAP_SYS_PTRACE (or a
 * privileged one) passes the ptrace checks on us despite PR_SET_DUMPABLE 0: it could read and
 * write the filesystem through /proc/1/root and /proc/1/cwd, or attach and make us run its code.
 * So pod-init keeps nothing worth having: its own mount namespace holding only an empty
 * read-only tmpfs (mounted over the pod's pin dir, which exists, then pivoted into, the host's
 * tree detached), no capability in any set, uid/gid nobody, no_new_privs, non-dumpable. */
static int confine(const char *dir, crib_err *err) {
  if (unshare(CLONE_NEWNS) < 0) return crib_fail(err, errno, "pod-init: unshare CLONE_NEWNS");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return crib_fail(err, errno, "pod-init: make `/` private");
  if (mount("crib-pod-init", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555") < 0)
    return crib_fail(err, errno, "pod-init: mount an empty tmpfs on `%s`", dir);
  if (chdir(dir) < 0) return crib_fail(err, errno, "pod-init: chdir `%s`", dir);
  /* pivot_root(".", ".") stacks the old root on the new one; detaching it leaves the tmpfs. */
  if (syscall(SYS_pivot_root, ".", ".") < 0) return crib_fail(err, errno, "pod-init: pivot_root `%s`", dir);
  if (umount2(".", MNT_DETACH) < 0) return crib_fail(err, errno, "pod-init: detach the host's root");
  if (chdir("/") < 0) return crib_fail(err, errno, "pod-init: chdir `/`");
  if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    return crib_fail(err, errno, "pod-init: remount its root read-only");
  /* The bounding set first (that needs CAP_SETPCAP); EINVAL past the kernel's last capability. */
  for (int cap = 0; cap <= 63; cap++)
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
      return crib_fail(err, errno, "pod-init: prctl PR_CAPBSET_DROP %d", cap);
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
    return crib_fail(err, errno, "pod-init: prctl PR_CAP_AMBIENT_CLEAR_ALL");
  if (setgroups(0, NULL) < 0) return crib_fail(err, errno, "pod-init: setgroups");
  if (setresgid(POD_INIT_ID, POD_INIT_ID, POD_INIT_ID) < 0)
    return crib_fail(err, errno, "pod-init: setresgid %d", POD_INIT_ID);
  /* Leaving uid 0 (without PR_SET_KEEPCAPS) clears the permitted and effective sets too. */
  if (setresuid(POD_INIT_ID, POD_INIT_ID, POD_INIT_ID) < 0)
    return crib_fail(err, errno, "pod-init: setresuid %d", POD_INIT_ID);
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
  struct __user_cap_data_struct none[2] = {{0}};
  if (syscall(SYS_capset, &hdr, none) < 0) return crib_fail(err, errno, "pod-init: capset (drop all)");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return crib_fail(err, errno, "pod-init: prctl PR_SET_NO_NEW_PRIVS");
  /* A uid change resets dumpability to the fs.suid_dumpable sysctl, which a host may set to 1. */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) return crib_fail(err, errno, "pod-init: prctl PR_SET_DUMPABLE 0");
  return 0;
}

static _Noreturn void init_loop(int report_fd, const char *dir) {
  crib_err err = {0};
  sigset_t all, wanted;
  sigfillset(&all);
  sigemptyset(&wanted);
  sigaddset(&wanted, SIGCHLD);
  sigaddset(&wanted, SIGTERM);
  sigaddset(&wanted, SIGINT);
  /* Signals are taken synchronously with sigwaitinfo: no handlers, no races with waitpid. */
  if (sigprocmask(SIG_BLOCK, &all, NULL) < 0) {
    crib_fail(&err, errno, "pod-init: sigprocmask");
    goto fail;
  }
  if (setsid() < 0) {
    crib_fail(&err, errno, "pod-init: setsid");
    goto fail;
  }
  if (chdir("/") < 0) {
    crib_fail(&err, errno, "pod-init: chdir `/`");
    goto fail;
  }
  /* Release the caller's stdio: whoever spawned crib-pinns waits for those pipes to close. */
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) {
    crib_fail(&err, errno, "pod-init: open `/dev/null`");
    goto fail;
  }
  for (int fd = 0; fd <= 2; fd++) {
    if (dup2(null, fd) < 0) {
      crib_fail(&err, errno, "pod-init: dup2 /dev/null to %d", fd);
      goto fail;
    }
  }
  if (prctl(PR_SET_NAME, "crib-pod-init", 0, 0, 0) < 0) {
    crib_fail(&err, errno, "pod-init: prctl PR_SET_NAME");
    goto fail;
  }
  if (confine(dir, &err) < 0) goto fail;
  if (close(report_fd) < 0) exit(1);
  if (close_range(3, ~0U, 0) < 0) exit(1);

  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&wanted, &si);
    if (sig < 0) {
      if (errno == EINTR) continue;
      exit(1);
    }
    if (sig == SIGCHLD) {
      /* One SIGCHLD may stand for many exits: reap until none is left. */
      while (waitpid(-1, NULL, WNOHANG) > 0) {
      }
      continue;
    }
    exit(0);
  }

fail:
  report(report_fd, MSG_ERROR, 0, &err);
  exit(1);
}

static int join_pinned(const char *dir, crib_err *err) {
  for (size_t k = 0; k < pinns_nkinds; k++) {
    char path[4096];
    if (pinns_path(path, sizeof path, dir, pinns_kinds[k].name, err) < 0) return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue; /* the pod does not have that namespace pinned */
      return crib_fail(err, errno, "open `%s`", path);
    }
    if (setns(fd, pinns_kinds[k].flag) < 0) {
      int saved = errno;
      (void)close(fd); /* reporting the setns failure */
      return crib_fail(err, saved, "setns `%s` (is it a pinned %s namespace?)", path,
                       pinns_kinds[k].name);
    }
    if (close(fd) < 0) return crib_fail(err, errno, "close `%s`", path);
  }
  return 0;
}

int pinns_pod_init(const char *dir, int *pid_out, crib_err *err) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0) return crib_fail(err, errno, "pipe2");
  pid_t middle = fork();
  if (middle < 0) {
    int saved = errno;
    (void)close(pipefd[0]);
    (void)close(pipefd[1]);
    return crib_fail(err, saved, "fork");
  }
  if (middle == 0) {
    crib_err cerr = {0};
    if ((close(pipefd[0]) < 0 && crib_fail(&cerr, errno, "close pipe") < 0) ||
        join_pinned(dir, &cerr) < 0 || (unshare(CLONE_NEWPID) < 0 &&
                                        crib_fail(&cerr, errno, "unshare CLONE_NEWPID") < 0)) {
      report(pipefd[1], MSG_ERROR, 0, &cerr);
      _exit(1);
    }
    pid_t init = fork();
    if (init < 0) {
      crib_fail(&cerr, errno, "fork pod init");
      report(pipefd[1], MSG_ERROR, 0, &cerr);
      _exit(1);
    }
    if (init == 0) init_loop(pipefd[1], dir);
    report(pipefd[1], MSG_PID, (int)init, NULL);
    _exit(0);
  }
  int ret = 0, pid = -1;
  /* Our copy of the write end must go, or the read loop below never sees EOF. */
  if (close(pipefd[1]) < 0) ret = crib_fail(err, errno, "close pipe");

  struct init_msg m;
  long n = 0;
  /* Messages from the middle child (the pid) and from init (a setup error) until both close. */
  while ((n = pinns_read_all(pipefd[0], &m, sizeof m)) == (long)sizeof m) {
    if (m.type == MSG_PID) {
      pid = m.pid;
    } else if (ret == 0) {
      m.err.msg[sizeof m.err.msg - 1] = '\0';
      *err = m.err;
      ret = -1;
    }
  }
  if (n < 0 && ret == 0) ret = crib_fail(err, errno, "read from pod init");
  if (close(pipefd[0]) < 0 && ret == 0) ret = crib_fail(err, errno, "close pipe");
  int status;
  while (waitpid(middle, &status, 0) < 0) {
    if (errno != EINTR) {
      if (ret == 0) ret = crib_fail(err, errno, "waitpid %d", (int)middle);
      break;
    }
  }
  if (ret == 0 && pid <= 0) ret = crib_fail(err, 0, "pod init did not report its pid");
  if (ret < 0 && pid > 0) (void)kill(pid, SIGKILL); /* half-started: leave nothing behind */
  if (ret == 0) *pid_out = pid;
  return ret;
}
