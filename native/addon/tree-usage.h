/* Disk usage of directory trees the way `du -x` counts it (tree-usage.c). */
#ifndef CRIB_TREE_USAGE_H
#define CRIB_TREE_USAGE_H

#include <stdbool.h>
#include <stdint.h>

struct crib_tree_usage {
  /* Allocated bytes (st_blocks × 512) and inodes, each inode counted once. */
  uint64_t bytes;
  uint64_t inodes;
  /* Directories deeper than max_depth below a root were counted but not entered. */
  bool too_deep;
};

/*
 * Walks each of `roots` (n of them), entering directories down to `max_depth` levels below it (a
 * deeper one is counted, not entered: the walk keeps each level's name), and sums what it holds into *out: every entry's allocated
 * blocks, an inode with several links once over all the roots, symlinks never followed, no
 * other filesystem entered. A root that does not exist counts as empty; an entry that vanishes
 * while the walk runs counts as nothing. No path is ever longer than one name: each entry is
 * reached from its directory's descriptor, so a tree of any depth is walked, and only a bounded
 * number of descriptors is held open. Returns 0, or -errno of the call that failed.
 */
int crib_tree_usage(const char *const *roots, int n, uint32_t max_depth, struct crib_tree_usage *out);

#endif
