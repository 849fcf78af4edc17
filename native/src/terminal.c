#include "terminal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "crib-fd-passing.h"
#include "procfs.h"
#include "root-path.h"
#include "spec.h"

/* fs/devpts/inode.c: the ptmx node of every devpts instance is inode 2, device 5:2. */
#define PTMX_INO 2

/* The container's /dev/pts/ptmx, opened on a plain path (no symlink on the way) and checked to be
 * the ptmx of a devpts, not a lookalike a shared volume slipped in, before it is opened for real
 * (through the procfs handle). */
static int open_ptmx(int proc, crib_err *err) {
  int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return crib_fail(err, errno, "open /");
  int h = crib_root_open(root, "/dev/pts/ptmx", O_PATH | O_NOFOLLOW, true, err);
  close(root);
  if (h < 0) return -1;
  struct stat sb;
  struct statfs sfs;
  if (fstat(h, &sb) < 0 || fstatfs(h, &sfs) < 0) {
    int e = errno;
    close(h);
    return crib_fail(err, e, "fstat /dev/pts/ptmx");
  }
  if (sfs.f_type != DEVPTS_SUPER_MAGIC || !S_ISCHR(sb.st_mode) || sb.st_rdev != makedev(5, 2) ||
      sb.st_ino != PTMX_INO) {
    close(h);
    if (!S_ISCHR(sb.st_mode))
      return crib_fail(err, 0, "/dev/pts/ptmx is a %s, not the ptmx of a devpts", crib_file_kind(sb.st_mode));
    return crib_fail(err, 0, "/dev/pts/ptmx is character device %u:%u (inode %llu, filesystem magic "
                     "0x%lx), not the ptmx of a devpts (5:2, inode 2, devpts)", major(sb.st_rdev),
                     minor(sb.st_rdev), (unsigned long long)sb.st_ino, (unsigned long)sfs.f_type);
  }
  int fd = crib_procfs_reopen(proc, h, O_RDWR | O_NOCTTY, err);
  close(h);
  return fd;
}

int crib_pty_open(int proc, int *master, int *peer, crib_err *err) {
  int fd = open_ptmx(proc, err);
  if (fd < 0) return -1;
  int unlock = 0;
  if (ioctl(fd, TIOCSPTLCK, &unlock) < 0) {
    int e = errno;
    close(fd);
    return crib_fail(err, e, "unlock pty");
  }
  /* The peer by fd: a /dev/pts/<n> path could be made to name something else. */
  int p = ioctl(fd, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (p < 0) {
    int e = errno;
    close(fd);
    return crib_fail(err, e, "open the pty's peer (TIOCGPTPEER)");
  }
  *master = fd;
  *peer = p;
  return 0;
}

int crib_pty_set_size(int fd, json_t *size, crib_err *err) {
  if (!json_is_object(size)) return 0;
  struct winsize ws = {.ws_row = (unsigned short)crib_json_int(size, "height", 0),
                       .ws_col = (unsigned short)crib_json_int(size, "width", 0)};
  if (ioctl(fd, TIOCSWINSZ, &ws) < 0) return crib_fail(err, errno, "set console size");
  return 0;
}

int crib_pty_become_stdio(int slave, crib_err *err) {
  if (setsid() < 0) return crib_fail(err, errno, "setsid");
  if (ioctl(slave, TIOCSCTTY, 0) < 0) return crib_fail(err, errno, "set controlling terminal");
  for (int i = 0; i < 3; i++)
    if (dup2(slave, i) < 0) return crib_fail(err, errno, "dup2 pty onto fd %d", i);
  if (slave > 2) close(slave);
  return 0;
}

int crib_console_socket_send(const char *path, int fd, const char *name, crib_err *err) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path)
    return crib_fail(err, ENAMETOOLONG, "console socket `%s`", path);
  strcpy(sa.sun_path, path);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return crib_fail(err, errno, "socket");
  if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(s);
    return crib_fail(err, e, "connect console socket `%s`", path);
  }
  ssize_t n = crib_send_with_fd(s, name, strlen(name), fd);
  int e = errno;
  close(s);
  if (n < 0) return crib_fail(err, e, "send pty to console socket `%s`", path);
  return 0;
}
