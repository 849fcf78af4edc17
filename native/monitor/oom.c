/* OOM detection: the kernel counts OOM kills per memory cgroup (v1: "oom_kill N" in
 * memory.oom_control; v2: "oom_kill N" in memory.events). The counter is read while the container
 * is alive (its /proc/<pid>/cgroup vanishes with it) and again after it exited: a rise means a
 * process of the container was OOM-killed. */
#include "monitor.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static long long read_counter(const char *path) {
  FILE *f = fopen(path, "re");
  if (f == NULL) return -1;
  char line[256];
  long long v = -1;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "oom_kill %lld", &v) == 1) break;
  }
  fclose(f);
  return v;
}

void oom_probe_init(struct oom_probe *p, pid_t pid) {
  p->counter_path[0] = '\0';
  p->before = -1;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
  FILE *f = fopen(path, "re");
  if (f == NULL) return;
  char line[4096];
  char v1[4096] = "", v2[4096] = "";
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL) continue;
    *c2 = '\0';
    const char *ctrls = c1 + 1, *cg = c2 + 1;
    if (strcmp(ctrls, "") == 0 && strncmp(line, "0", 1) == 0) {
      snprintf(v2, sizeof v2, "%s", cg);
      continue;
    }
    /* The controller list is comma-separated ("memory" alone on most hosts). */
    char list[256];
    snprintf(list, sizeof list, ",%s,", ctrls);
    if (strstr(list, ",memory,")) snprintf(v1, sizeof v1, "%s", cg);
  }
  fclose(f);
  /* A hybrid host has both; memory then lives in v1, the v2 hierarchy has no controllers. */
  int n = 0;
  if (v1[0]) {
    n = snprintf(p->counter_path, sizeof p->counter_path,
                 "/sys/fs/cgroup/memory%s/memory.oom_control", v1);
  } else if (v2[0] && access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
    n = snprintf(p->counter_path, sizeof p->counter_path, "/sys/fs/cgroup%s/memory.events", v2);
  }
  if (n < 0 || (size_t)n >= sizeof p->counter_path) p->counter_path[0] = '\0';
  if (p->counter_path[0]) p->before = read_counter(p->counter_path);
  if (p->before < 0) p->counter_path[0] = '\0';
}

bool oom_probe_killed(const struct oom_probe *p) {
  if (p->counter_path[0] == '\0') return false;
  long long after = read_counter(p->counter_path);
  return after > p->before;
}
