/* Disk usage of directory trees, for the daemon's stats (containers' writable layers, ImageFsInfo).
 *
 * Walked here rather than in JavaScript for two reasons. A walk through Node's fs reached every
 * entry by its whole path, so an entry deeper than PATH_MAX (a container needs only a loop of
 * mkdir and cd to make one in its writable layer) failed the whole walk with ENAMETOOLONG, and
 * with it the stats of every container listed beside it and the node's ImageFsInfo: kubelet's
 * eviction went blind to the disk the container was filling. And each entry was two round trips
 * through libuv's pool (lstat, readdir) with a promise each: 150 µs of the daemon's CPU for a
 * container's five-entry layer, 30 ms for 200 containers, every stats period.
 *
 * Here an entry is reached from its directory's descriptor by its name alone (openat, fstatat),
 * so no path grows with the depth. A walk holds at most FD_BUDGET directories open: past that, the
 * shallowest is closed, and reopened when the walk comes back to it, through ".." of the child it
 * is coming back from, accepted only when it is the same directory (device and inode) as before;
 * otherwise (the tree was renamed meanwhile) by its names from the root, each level checked the
 * same way. A directory that cannot be found again that way is taken as gone. Its position is
 * found again by reading past the entries it had handed out.
 *
 * Bounds, whatever the tree: the descriptors above; the caller's depth (a deeper directory is
 * counted, not entered, and the result says so; each level's name is kept meanwhile); the inodes
 * with several links remembered to count once, MAX_LINKED (past that many, a further one is
 * counted at each link: more, never less, than the tree holds). Directories are never
 * remembered: none has two names, and no other filesystem is entered, so none is reached twice by
 * a walk of a tree nobody renames. */
#include "tree-usage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Directories one walk holds open at once. */
#define FD_BUDGET 64
/* Inodes with several links remembered at most (16 bytes each, in a table twice as large). */
#define MAX_LINKED (1u << 19)

struct linked_set {
  struct inode_key {
    uint64_t dev, ino;
  } *slots; /* dev == 0 && ino == 0: empty (no filesystem has device 0 and inode 0) */
  size_t cap, used;
};

struct frame {
  DIR *dir;          /* NULL while closed to stay within FD_BUDGET, or when gone */
  uint64_t consumed; /* entries readdir has handed out, "." and ".." included */
  dev_t dev;
  ino_t ino;
  char *name; /* within the parent; NULL for a root */
};

struct walk {
  const char *root;
  size_t max_depth;
  dev_t root_dev;
  struct frame *frames;
  size_t depth, cap;
  size_t lo; /* frames [lo, depth) are open, those below lo closed */
  struct linked_set linked;
  struct crib_tree_usage *out;
};

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

/* Whether (dev, ino) is new to the set, adding it; true when the set is full (counted again). */
static bool first_link(struct linked_set *s, uint64_t dev, uint64_t ino) {
  if (s->used >= MAX_LINKED) return true;
  if (2 * (s->used + 1) > s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 1024;
    struct inode_key *slots = calloc(cap, sizeof *slots);
    if (!slots) return true; /* out of memory: counted again, never less */
    for (size_t i = 0; i < s->cap; i++) {
      if (s->slots[i].dev == 0 && s->slots[i].ino == 0) continue;
      size_t j = mix(s->slots[i].dev ^ mix(s->slots[i].ino)) & (cap - 1);
      while (slots[j].dev != 0 || slots[j].ino != 0) j = (j + 1) & (cap - 1);
      slots[j] = s->slots[i];
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
  }
  size_t j = mix(dev ^ mix(ino)) & (s->cap - 1);
  for (; s->slots[j].dev != 0 || s->slots[j].ino != 0; j = (j + 1) & (s->cap - 1)) {
    if (s->slots[j].dev == dev && s->slots[j].ino == ino) return false;
  }
  s->slots[j] = (struct inode_key){dev, ino};
  s->used++;
  return true;
}

/* Counts the entry unless it is a further link to an inode already counted; whether it was. */
static bool count(struct walk *w, const struct stat *st) {
  if (!S_ISDIR(st->st_mode) && st->st_nlink > 1 && !first_link(&w->linked, st->st_dev, st->st_ino)) return false;
  w->out->inodes += 1;
  w->out->bytes += (uint64_t)st->st_blocks * 512;
  return true;
}

/* A directory's descriptor, reached by `name` from `dirfd`, if it is still the directory (dev,
 * ino); -1 when it is gone or another one, or -2 with errno for any other failure. */
static int open_same_dir(int dirfd, const char *name, dev_t dev, ino_t ino) {
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? -1 : -2;
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -2;
  }
  if (st.st_dev != dev || st.st_ino != ino) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Frame i's directory found again by its names from the root; -1 when gone, -2 with errno. */
static int open_by_names(struct walk *w, size_t i) {
  int fd = open_same_dir(AT_FDCWD, w->root, w->frames[0].dev, w->frames[0].ino);
  for (size_t k = 1; k <= i && fd >= 0; k++) {
    int next = open_same_dir(fd, w->frames[k].name, w->frames[k].dev, w->frames[k].ino);
    int e = errno; /* of open_same_dir's failure, for the caller */
    close(fd);
    errno = e;
    fd = next;
  }
  return fd;
}

/*
 * Reopens closed frame i, the parent of the open frame `child_fd` is the descriptor of (-1: none),
 * at the entry it had reached. 0, also when it is gone (its frame then has no DIR: the walk leaves
 * it), or -errno.
 */
static int reopen(struct walk *w, size_t i, int child_fd) {
  struct frame *f = &w->frames[i];
  int fd = child_fd >= 0 ? open_same_dir(child_fd, "..", f->dev, f->ino) : -1;
  if (fd == -1) fd = open_by_names(w, i);
  if (fd == -2) return -errno;
  if (fd == -1) return 0;
  DIR *d = fdopendir(fd);
  if (!d) {
    int e = errno;
    close(fd);
    return -e;
  }
  /* Read past what it had handed out; a directory that shrank meanwhile simply ends sooner. */
  for (uint64_t n = 0; n < f->consumed; n++) {
    errno = 0;
    if (readdir(d)) continue;
    if (errno != 0) {
      int e = errno;
      closedir(d);
      return -e;
    }
    break;
  }
  f->dir = d;
  w->lo = i;
  return 0;
}

/* Enters directory `name` of the top frame, counted already with *st. 0 or -errno. */
static int descend(struct walk *w, const char *name, const struct stat *st) {
  int fd = open_same_dir(dirfd(w->frames[w->depth - 1].dir), name, st->st_dev, st->st_ino);
  if (fd == -1) return 0; /* replaced or removed since its fstatat: counted as it was */
  if (fd == -2) return -errno;
  char *copy = strdup(name);
  DIR *d = copy ? fdopendir(fd) : NULL;
  if (!d) {
    int e = errno;
    free(copy);
    close(fd);
    return -e;
  }
  if (w->depth == w->cap) {
    size_t cap = w->cap * 2;
    struct frame *frames = realloc(w->frames, cap * sizeof *frames);
    if (!frames) {
      free(copy);
      closedir(d);
      return -ENOMEM;
    }
    w->frames = frames;
    w->cap = cap;
  }
  w->frames[w->depth++] = (struct frame){.dir = d, .dev = st->st_dev, .ino = st->st_ino, .name = copy};
  if (w->depth - w->lo > FD_BUDGET) {
    closedir(w->frames[w->lo].dir);
    w->frames[w->lo].dir = NULL;
    w->lo++;
  }
  return 0;
}

/* Leaves the top frame, reopening its parent first when that was closed. 0 or -errno. */
static int leave(struct walk *w) {
  struct frame *top = &w->frames[w->depth - 1];
  int r = 0;
  if (w->depth >= 2 && w->frames[w->depth - 2].dir == NULL) {
    r = reopen(w, w->depth - 2, top->dir ? dirfd(top->dir) : -1);
  }
  if (top->dir) closedir(top->dir);
  free(top->name);
  w->depth--;
  if (w->lo > w->depth) w->lo = w->depth;
  return r;
}

static int walk_tree(struct walk *w) {
  struct stat st;
  if (fstatat(AT_FDCWD, w->root, &st, AT_SYMLINK_NOFOLLOW) < 0) return errno == ENOENT ? 0 : -errno;
  if (!count(w, &st) || !S_ISDIR(st.st_mode)) return 0;
  int fd = open_same_dir(AT_FDCWD, w->root, st.st_dev, st.st_ino);
  if (fd == -1) return 0;
  if (fd == -2) return -errno;
  DIR *d = fdopendir(fd);
  if (!d) {
    int e = errno;
    close(fd);
    return -e;
  }
  w->root_dev = st.st_dev;
  w->frames[0] = (struct frame){.dir = d, .dev = st.st_dev, .ino = st.st_ino};
  w->depth = 1;
  w->lo = 0;
  int r = 0;
  while (w->depth > 0 && r == 0) {
    struct frame *f = &w->frames[w->depth - 1];
    if (!f->dir) { /* gone: nothing more of it to count */
      r = leave(w);
      continue;
    }
    errno = 0;
    struct dirent *de = readdir(f->dir);
    if (!de) {
      r = errno != 0 ? -errno : leave(w);
      continue;
    }
    f->consumed++;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (fstatat(dirfd(f->dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno != ENOENT) r = -errno;
      continue;
    }
    if (!count(w, &st) || !S_ISDIR(st.st_mode) || st.st_dev != w->root_dev) continue;
    if (w->depth > w->max_depth) {
      w->out->too_deep = true;
      continue;
    }
    r = descend(w, de->d_name, &st);
  }
  while (w->depth > 0) { /* after a failure: close what is open */
    struct frame *f = &w->frames[--w->depth];
    if (f->dir) closedir(f->dir);
    free(f->name);
  }
  return r;
}

int crib_tree_usage(const char *const *roots, int n, uint32_t max_depth, struct crib_tree_usage *out) {
  *out = (struct crib_tree_usage){0};
  struct walk w = {.out = out, .cap = 64, .max_depth = max_depth};
  w.frames = malloc(w.cap * sizeof *w.frames);
  if (!w.frames) return -ENOMEM;
  int r = 0;
  for (int i = 0; i < n && r == 0; i++) {
    w.root = roots[i];
    r = walk_tree(&w);
  }
  free(w.frames);
  free(w.linked.slots);
  return r;
}
