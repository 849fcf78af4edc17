/* Test helper: prints the unique id of the mount PATH is on (statx STATX_MNT_ID_UNIQUE, Linux
 * 6.8+: 64-bit, never reused, given in creation order), or exits 2 when the kernel has none. The
 * old mount ids /proc/self/mountinfo shows are reused as soon as they are freed, so they cannot
 * tell how many mounts were made between two points. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U
#endif

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: mount-id PATH\n");
    return 1;
  }
  struct statx sx;
  if (statx(AT_FDCWD, argv[1], 0, STATX_MNT_ID_UNIQUE, &sx) < 0) {
    perror(argv[1]);
    return 1;
  }
  if (!(sx.stx_mask & STATX_MNT_ID_UNIQUE)) {
    fprintf(stderr, "this kernel has no unique mount ids (STATX_MNT_ID_UNIQUE)\n");
    return 2;
  }
  printf("%llu\n", (unsigned long long)sx.stx_mnt_id);
  return 0;
}
