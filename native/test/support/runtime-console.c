/* Test helper: a --console-socket receiver. Listens on SOCK, prints "ready" on stdout, accepts
 * one connection, takes the pty master passed with SCM_RIGHTS, optionally writes INPUT to it,
 * then copies everything the pty outputs to stdout until the slave side is closed. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: runtime-console SOCK [INPUT]\n");
    return 2;
  }
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", argv[1]);
  int l = socket(AF_UNIX, SOCK_STREAM, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 1) < 0) {
    perror("runtime-console: listen");
    return 2;
  }
  printf("ready\n");
  fflush(stdout);
  int c = accept(l, NULL, NULL);
  if (c < 0) {
    perror("runtime-console: accept");
    return 2;
  }
  char name[64] = "";
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {.iov_base = name, .iov_len = sizeof name - 1};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                      .msg_controllen = sizeof u.buf};
  if (recvmsg(c, &mh, 0) < 0) {
    perror("runtime-console: recvmsg");
    return 2;
  }
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  if (!cm || cm->cmsg_type != SCM_RIGHTS) {
    fprintf(stderr, "runtime-console: no fd received\n");
    return 3;
  }
  int master;
  memcpy(&master, CMSG_DATA(cm), sizeof master);
  close(c);
  unlink(argv[1]);
  printf("got-fd %s\n", name);
  fflush(stdout);
  if (argc > 2 && write(master, argv[2], strlen(argv[2])) < 0) perror("runtime-console: write");
  char buf[4096];
  for (;;) {
    ssize_t n = read(master, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break; /* EIO once every slave fd is closed */
    fwrite(buf, 1, (size_t)n, stdout);
    fflush(stdout);
  }
  return 0;
}
