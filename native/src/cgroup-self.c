#include "cgroup-self.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"

int crib_cgroup_enter_self(const crib_cgroup *cg, crib_err *err) {
  if (cg->mode != CRIB_CG_V1) return 1;
  FILE *mi = fopen("/proc/self/mountinfo", "re");
  if (!mi) return crib_fail(err, errno, "open /proc/self/mountinfo");
  char line[4096];
  int rc = 0, moved = 0;
  while (rc == 0 && fgets(line, sizeof line, mi)) {
    char *sep = strstr(line, " - ");
    if (!sep || strncmp(sep, " - cgroup ", 10) != 0) continue;
    char mnt[PATH_MAX];
    if (sscanf(line, "%*d %*d %*s %*s %4095s", mnt) != 1) continue;
    /* Only the hierarchies under the library's root (it may be overridden for tests). */
    size_t rlen = strlen(cg->root);
    if (strncmp(mnt, cg->root, rlen) != 0 || mnt[rlen] != '/') continue;
    char tasks[PATH_MAX * 2];
    if (!CRIB_FMT(tasks, "%s%s/tasks", mnt, cg->path)) {
      rc = crib_fail(err, ENAMETOOLONG, "cgroup path `%s%s`", mnt, cg->path);
      break;
    }
    int fd = open(tasks, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue; /* the library made no cgroup in this hierarchy */
      rc = crib_fail(err, errno, "open `%s`", tasks);
      break;
    }
    if (write(fd, "0", 1) != 1) rc = crib_fail(err, errno, "move into cgroup: write `%s`", tasks);
    else moved++;
    close(fd);
  }
  fclose(mi);
  if (rc == 0 && moved == 0) return 1; /* nothing found: let the library do it */
  return rc;
}

/* Our own copy of the clone3 argument layout (v2 of the struct, with .cgroup): including
 * <linux/sched.h> next to glibc's <sched.h> clashes. */
struct clone3_args {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};
#define CRIB_CLONE_INTO_CGROUP 0x200000000ULL

pid_t crib_cgroup_fork(const crib_cgroup *cg, unsigned long flags, bool *entered) {
  *entered = false;
  fflush(NULL);
  if (cg->mode == CRIB_CG_V2) {
    char dir[PATH_MAX * 2];
    int fd = CRIB_FMT(dir, "%s%s", cg->root, cg->path) ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
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
      /* Older kernels or a cgroup we may not use this way: plain clone, parent moves us. */
      if (e != ENOSYS && e != E2BIG && e != EINVAL && e != EOPNOTSUPP && e != EBUSY) {
        errno = e;
        return -1;
      }
    }
  }
  return (pid_t)syscall(SYS_clone, SIGCHLD | flags, 0, NULL, NULL, 0);
}
