/* A fresh network namespace has `lo` down; pods expect 127.0.0.1 to work. */
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pinns.h"

int pinns_loopback_up(crib_err *err) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return crib_fail(err, errno, "socket AF_INET");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  int ret = 0;
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
    ret = crib_fail(err, errno, "ioctl SIOCGIFFLAGS `lo`");
  } else {
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) ret = crib_fail(err, errno, "ioctl SIOCSIFFLAGS `lo` up");
  }
  if (close(fd) < 0 && ret == 0) ret = crib_fail(err, errno, "close socket");
  return ret;
}
