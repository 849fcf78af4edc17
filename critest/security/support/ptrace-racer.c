/* The attacker of critest/security/ptrace-setup.test.ts, run as root with CAP_SYS_PTRACE inside a
 * container of a shared-PID pod (built with `cc -static`: it needs nothing from the image).
 *
 * Every process of the pod's PID namespace is visible to it, and CAP_SYS_PTRACE passes the
 * ptrace checks even on a non-dumpable process. So whatever crib runs in that namespace while it
 * still holds the host's mount namespace, host fds or more capabilities than the container is a
 * way out: attach to it and make it do anything. This program tries, on every new process it sees:
 *
 *   ptrace-racer race MARKER HOST_MNTNS
 *     forever: scan /proc; PTRACE_SEIZE each new pid at once (a seized process is stopped with
 *     PTRACE_INTERRUPT, so what follows sees it frozen as it was), then look through it:
 *       - /proc/<pid>/root/MARKER and /proc/<pid>/cwd/../../(...)/MARKER: MARKER is a path (from
 *         the host's /) of a file only the host has: seeing it is reaching the host's filesystem;
 *       - readlink /proc/<pid>/ns/mnt compared with HOST_MNTNS (the host's mount namespace);
 *       - its CapEff against our own permitted set;
 *       - process_vm_readv of its first mapping (reading, as writing would, its memory);
 *     then detach. One line per process:
 *       PROC <pid> comm=<comm> caps=<CapEff hex> beyond=<0|1> seize=<ok|errno> vm=<ok|errno>
 *            mnt=<host|container|errno> root=<host|no> cwd=<host|no>
 *
 * The test reads these lines from the container's log. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define PID_LIMIT (1 << 22) /* pid_max's ceiling */

static unsigned char seen[PID_LIMIT / 8];
static const char *marker, *host_mntns;
static uint64_t own_caps;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  /* One write per line: the CRI log must never interleave half lines. */
  if (write(1, line, (size_t)n) < 0) _exit(3);
}

static uint64_t status_caps(int pid, const char *field) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  char *p = strstr(buf, field);
  return p ? strtoull(p + strlen(field), NULL, 16) : 0;
}

static void comm_of(int pid, char *out, size_t n) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/comm", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t got = fd < 0 ? -1 : read(fd, out, n - 1);
  if (fd >= 0) close(fd);
  out[got > 0 ? got : 0] = '\0';
  out[strcspn(out, "\n ")] = '\0';
  if (!*out) snprintf(out, n, "?");
}

/* Is MARKER visible through /proc/<pid>/<link>, climbing to that tree's root first? */
static const char *reaches_host(int pid, const char *link) {
  char path[PATH_MAX];
  int n = snprintf(path, sizeof path, "/proc/%d/%s/", pid, link);
  for (int i = 0; i < 40 && n < (int)sizeof path - 4; i++) n += snprintf(path + n, sizeof path - (size_t)n, "../");
  snprintf(path + n, sizeof path - (size_t)n, "%s", marker);
  struct stat st;
  return stat(path, &st) == 0 ? "host" : "no";
}

static void mnt_of(int pid, char *out, size_t n) {
  char path[64], link[128];
  snprintf(path, sizeof path, "/proc/%d/ns/mnt", pid);
  ssize_t got = readlink(path, link, sizeof link - 1);
  if (got < 0) {
    snprintf(out, n, "%s", strerrorname_np(errno) ? strerrorname_np(errno) : "error");
    return;
  }
  link[got] = '\0';
  snprintf(out, n, "%s", strcmp(link, host_mntns) == 0 ? "host" : "container");
}

static const char *read_memory(int pid) {
  char path[64], buf[128];
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return strerrorname_np(errno);
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return "empty";
  buf[n] = '\0';
  unsigned long addr = strtoul(buf, NULL, 16);
  char got[8];
  struct iovec local = {got, sizeof got}, remote = {(void *)addr, sizeof got};
  return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)sizeof got ? "ok" : strerrorname_np(errno);
}

static void probe(int pid) {
  /* Seize first: once it is stopped, nothing below races the process's own progress. */
  const char *seize = "ok";
  int stopped = 0;
  if (ptrace(PTRACE_SEIZE, pid, 0, 0) < 0) {
    seize = strerrorname_np(errno);
  } else {
    /* Stopped, or gone: either way waitpid returns, and a stopped tracee can be detached. */
    int st;
    stopped = ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0 && waitpid(pid, &st, __WALL) == pid && WIFSTOPPED(st);
  }
  char comm[32], mnt[32];
  comm_of(pid, comm, sizeof comm);
  uint64_t caps = status_caps(pid, "CapEff:");
  mnt_of(pid, mnt, sizeof mnt);
  const char *root = reaches_host(pid, "root"), *cwd = reaches_host(pid, "cwd");
  const char *vm = read_memory(pid);
  if (stopped) ptrace(PTRACE_DETACH, pid, 0, 0);
  say("PROC %d comm=%s caps=%016" PRIx64 " beyond=%d seize=%s vm=%s mnt=%s root=%s cwd=%s", pid, comm,
      caps, (caps & ~own_caps) != 0, seize, vm, mnt, root, cwd);
}

static void scan(int self) {
  DIR *d = opendir("/proc");
  if (!d) {
    say("ERROR opendir /proc: %s", strerror(errno));
    exit(2);
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    int pid = atoi(e->d_name);
    if (pid <= 0 || pid >= PID_LIMIT || pid == self || (seen[pid / 8] & (1 << (pid % 8)))) continue;
    seen[pid / 8] |= (unsigned char)(1 << (pid % 8));
    probe(pid);
  }
  closedir(d);
}

int main(int argc, char **argv) {
  if (argc != 4 || strcmp(argv[1], "race") != 0) {
    fprintf(stderr, "usage: ptrace-racer race MARKER HOST_MNTNS\n");
    return 2;
  }
  marker = argv[2];
  host_mntns = argv[3];
  own_caps = status_caps(getpid(), "CapPrm:");
  say("RACING caps=%016" PRIx64, own_caps);
  int self = getpid();
  for (;;) scan(self);
}
