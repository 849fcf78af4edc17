/* Killing an exec'd process together with whatever it started: scanning /proc for descendants by
 * parent pid, repeated until no new pid turns up (children may fork while we look). */
#include "crib-proc-tree.h"

#include <dirent.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TREE_MAX 1024

static pid_t parent_of(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "re");
  if (f == NULL) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* comm may contain spaces and parentheses: the fields after it start at the last ')'. */
  char *p = strrchr(buf, ')');
  if (p == NULL) return -1;
  char state;
  int ppid;
  if (sscanf(p + 1, " %c %d", &state, &ppid) != 2) return -1;
  return ppid;
}

void kill_tree(pid_t root) {
  pid_t tree[TREE_MAX];
  size_t count = 1;
  tree[0] = root;
  kill(root, SIGSTOP); /* a stopped process cannot fork while its children are collected */
  for (int round = 0; round < 8; round++) {
    size_t before = count;
    DIR *d = opendir("/proc");
    if (d == NULL) break;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && count < TREE_MAX) {
      char *end;
      long pid = strtol(e->d_name, &end, 10);
      if (*end != '\0' || pid <= 0) continue;
      bool known = false;
      for (size_t i = 0; i < count; i++) known |= tree[i] == pid;
      if (known) continue;
      pid_t pp = parent_of((pid_t)pid);
      for (size_t i = 0; i < count; i++) {
        if (tree[i] == pp) {
          tree[count++] = (pid_t)pid;
          kill((pid_t)pid, SIGSTOP);
          break;
        }
      }
    }
    closedir(d);
    if (count == before) break;
  }
  for (size_t i = 0; i < count; i++) kill(tree[i], SIGKILL);
}
