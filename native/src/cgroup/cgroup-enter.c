/* Getting a new process into the cgroup without the slow migration.
 *
 * crib_cg_enter writes a pid to cgroup.procs. On v1 that takes the kernel's global threadgroup
 * rwsem for writing, which waits for an RCU grace period: ~10 ms here, on every create and exec.
 * Writing "0" (the caller itself) to a v1 `tasks` file moves just the calling thread and skips
 * that lock (kernel/cgroup/cgroup.c, cgroup_procs_write_start). The runtime's setup processes are
 * single-threaded, so moving the thread moves the process: 0.02 ms instead of 10 ms.
 * v2 has no such file; there clone3(CLONE_INTO_CGROUP) makes the child be born inside the
 * cgroup, with no migration at all. */
#include "cgroup-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

static int enter_self_one(const char *dir, void *arg, crib_err *err) {
  int *moved = arg;
  struct statfs fs;
  if (statfs(dir, &fs) < 0) {
    if (errno == ENOENT) return 0; /* the library made no cgroup in this hierarchy */
    return crib_fail(err, errno, "statfs %s", dir);
  }
  /* `tasks` only means "move me" on a real v1 cgroupfs; a prepared tree under a test root
   * (CRIB_CGROUP_ROOT) is left to crib_cg_enter. */
  if ((unsigned long)fs.f_type != (unsigned long)CGROUP_SUPER_MAGIC) return 0;
  if (crib_cgi_write(dir, "tasks", "0", err) < 0) return -1;
  (*moved)++;
  return 0;
}

int crib_cg_enter_self(const crib_cgroup *cg, crib_err *err) {
  if (cg->mode != CRIB_CG_V1) return 1;
  int moved = 0;
  if (crib_cgi_for_each_dir(cg, enter_self_one, &moved, err) < 0)
    return crib_err_wrap(err, "move into cgroup %s", cg->path);
  return moved > 0 ? 0 : 1;
}

/* Our own copy of the clone3 argument layout (v2 of the struct, with .cgroup): including
 * <linux/sched.h> next to glibc's <sched.h> clashes. */
struct clone3_args {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};
#define CRIB_CLONE_INTO_CGROUP 0x200000000ULL

pid_t crib_cg_fork(const crib_cgroup *cg, unsigned long flags, bool *entered) {
  *entered = false;
  /* Output still buffered would otherwise be written by both processes. */
  fflush(NULL);
  if (cg->mode == CRIB_CG_V2) {
    char dir[PATH_MAX];
    int fd = CRIB_CGI_FMT(dir, "%s%s", cg->root, cg->path)
                 ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                 : -1;
    if (fd >= 0) {
      struct clone3_args a = {.flags = flags | CRIB_CLONE_INTO_CGROUP, .exit_signal = SIGCHLD,
                              .cgroup = (uint64_t)fd};
      pid_t pid = (pid_t)syscall(SYS_clone3, &a, sizeof a);
      int e = errno;
      if (pid == 0) return 0; /* child: the fd is close-on-exec */
      close(fd);
      if (pid > 0) {
        *entered = true;
        return pid;
      }
      /* Older kernels or a cgroup we may not use this way: plain clone, the parent moves us. */
      if (e != ENOSYS && e != E2BIG && e != EINVAL && e != EOPNOTSUPP && e != EBUSY) {
        errno = e;
        return -1;
      }
    }
  }
  return (pid_t)syscall(SYS_clone, SIGCHLD | flags, 0, NULL, NULL, 0);
}
