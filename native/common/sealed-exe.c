#include "crib-sealed-exe.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U /* Linux 6.3; older kernels take executability for granted */
#endif

extern char **environ;

/* Write, grow and shrink cover every way to change the bytes (seals are never lifted);
 * F_SEAL_SEAL freezes the set, so what crib_exe_is_sealed checks stays true for the file's life. */
#define CRIB_EXE_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

bool crib_exe_is_sealed(void) {
  int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  /* A regular file answers EINVAL: only memfds (and shmem files) carry seals. */
  int seals = fcntl(fd, F_GET_SEALS);
  close(fd);
  return seals >= 0 && (seals & CRIB_EXE_SEALS) == CRIB_EXE_SEALS;
}

static int make_memfd(const char *name, crib_err *err) {
  int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  /* EINVAL: a kernel before 6.3, which knows no MFD_EXEC and makes every memfd executable. */
  if (fd < 0 && errno == EINVAL) fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 && errno == EACCES)
    return crib_fail(err, errno, "memfd_create `%s` (executable memfds are forbidden here: sysctl "
                     "vm.memfd_noexec must be 0 or 1 for crib to run from a sealed copy)", name);
  if (fd < 0) return crib_fail(err, errno, "memfd_create `%s`", name);
  return fd;
}

/* sendfile, not copy_file_range: the binary's filesystem is never the memfd's (shmem), and
 * copy_file_range refuses to cross filesystems of different types. Both stay in the kernel. */
static int copy_all(const char *path, int from, int to, off_t size, crib_err *err) {
  off_t off = 0;
  while (off < size) {
    ssize_t n = sendfile(to, from, &off, (size_t)(size - off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return crib_fail(err, errno, "sendfile `%s` into a memfd", path);
    }
    if (n == 0) return crib_fail(err, 0, "copy `%s`: short file (%lld of %lld bytes)", path,
                                 (long long)off, (long long)size);
  }
  return 0;
}

/* F_SEAL_WRITE answers EBUSY while the kernel still holds a reference to one of the memfd's
 * pages (a per-CPU LRU batch, a migration). The kernel waits about 150 ms for them itself; on a
 * loaded node that can fall short, and a container's start would fail for it: a few more tries,
 * 20 ms apart. A refused F_ADD_SEALS adds no seal, so trying again starts from the same file. */
static int add_exe_seals(const char *path, int mfd, crib_err *err) {
  for (int attempt = 1;; attempt++) {
    if (fcntl(mfd, F_ADD_SEALS, CRIB_EXE_SEALS) == 0) return 0;
    if (errno != EBUSY || attempt == 5)
      return crib_fail(err, errno, "seal the memfd copy of `%s` (F_ADD_SEALS, try %d)", path, attempt);
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
    if (nanosleep(&pause, NULL) < 0 && errno != EINTR) return crib_fail(err, errno, "nanosleep");
  }
}

int crib_sealed_copy(int from, const char *path, const char *name, crib_err *err) {
  struct stat st;
  if (fstat(from, &st) < 0) return crib_fail(err, errno, "fstat `%s`", path);
  int mfd = make_memfd(name, err);
  if (mfd >= 0 && (copy_all(path, from, mfd, st.st_size, err) < 0 || add_exe_seals(path, mfd, err) < 0)) {
    close(mfd);
    mfd = -1;
  }
  return mfd;
}

int crib_sealed_exe_ensure(const char *name, char **argv, crib_err *err) {
  if (crib_exe_is_sealed()) return 0;
  int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (exe < 0) return crib_fail(err, errno, "open `/proc/self/exe` (is /proc mounted?)");
  int mfd = crib_sealed_copy(exe, "/proc/self/exe", name, err);
  close(exe);
  if (mfd < 0) return -1;
  /* The memfd is close-on-exec: the new image holds it only as its executable, so no fd to it
   * is left for the container to inherit or find in /proc/<pid>/fd. */
  syscall(SYS_execveat, mfd, "", argv, environ, AT_EMPTY_PATH);
  int rc = crib_fail(err, errno, "execveat the sealed copy of `/proc/self/exe`");
  close(mfd);
  return rc;
}

int crib_guard_host_binary(const char *name, char **argv, crib_err *err) {
  if (crib_sealed_exe_ensure(name, argv, err) < 0) return -1;
  /* An execve from a memfd names the process "memfd:<name>"; ps and pgrep should keep seeing
   * the binary's own name. */
  if (prctl(PR_SET_NAME, name, 0, 0, 0) < 0) return crib_fail(err, errno, "prctl PR_SET_NAME `%s`", name);
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) return crib_fail(err, errno, "prctl PR_SET_DUMPABLE 0");
  return 0;
}
