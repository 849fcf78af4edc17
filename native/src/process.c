#include "process.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "capabilities.h"
#include "files.h"
#include "procfs.h"
#include "spec.h"

static const struct {
  const char *name;
  int res;
} rlimit_table[] = {
    {"RLIMIT_AS", RLIMIT_AS},           {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},     {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING}, {"RLIMIT_STACK", RLIMIT_STACK},
};

int crib_process_rlimits(json_t *process, crib_err *err) {
  size_t i;
  json_t *rl;
  json_array_foreach(json_object_get(process, "rlimits"), i, rl) {
    const char *type = crib_json_str(rl, "type");
    int res = -1;
    for (size_t k = 0; k < sizeof rlimit_table / sizeof rlimit_table[0]; k++)
      if (strcmp(rlimit_table[k].name, type) == 0) res = rlimit_table[k].res;
    if (res < 0) return crib_fail(err, 0, "process.rlimits[%zu]: unknown type `%s`", i, type);
    struct rlimit lim = {.rlim_cur = (rlim_t)json_integer_value(json_object_get(rl, "soft")),
                         .rlim_max = (rlim_t)json_integer_value(json_object_get(rl, "hard"))};
    if (setrlimit(res, &lim) < 0)
      return crib_fail(err, errno, "process.rlimits: set %s to soft %llu hard %llu", type,
                       (unsigned long long)lim.rlim_cur, (unsigned long long)lim.rlim_max);
  }
  return 0;
}

int crib_process_oom_score(json_t *process, int proc, char *warn, size_t warn_n, crib_err *err) {
  warn[0] = '\0';
  json_t *v = json_object_get(process, "oomScoreAdj");
  if (!json_is_integer(v)) return 0;
  long long want = json_integer_value(v);
  if (want < -1000 || want > 1000)
    return crib_fail(err, 0, "process.oomScoreAdj: %lld is outside -1000..1000", want);
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%lld", want);
  crib_err e;
  if (crib_procfs_write(proc, "self/oom_score_adj", buf, (size_t)n, &e) < 0) {
    if (e.errnum != EACCES && e.errnum != EPERM) {
      *err = e;
      return crib_err_wrap(err, "process.oomScoreAdj");
    }
    char cur[32] = "?";
    crib_err ignored;
    if (crib_procfs_read(proc, "self/oom_score_adj", cur, sizeof cur, &ignored) < 0) strcpy(cur, "?");
    cur[strcspn(cur, "\n")] = '\0';
    snprintf(warn, warn_n,
             "warning: process.oomScoreAdj %lld refused (%s: lowering it needs CAP_SYS_RESOURCE); "
             "keeping %s",
             want, strerror(e.errnum), cur);
  }
  return 0;
}

static int cap_mask(json_t *caps, const char *set, uint64_t *mask, char *warn, size_t warn_n) {
  *mask = 0;
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(caps, set), i, v) {
    int c = crib_cap_from_name(json_string_value(v));
    if (c < 0) {
      /* Newer profiles may name caps this kernel lacks: warn and go on, as runc does. */
      size_t len = strlen(warn);
      snprintf(warn + len, warn_n - len, "%swarning: unknown capability `%s` ignored",
               len ? "\n" : "", json_string_value(v));
      continue;
    }
    *mask |= 1ULL << c;
  }
  return 0;
}

/* The highest capability this kernel knows, probed with PR_CAPBSET_READ (EINVAL past the last)
 * rather than read from /proc/sys/kernel/cap_last_cap: after pivot that file is the
 * container's, and a number faked low there would keep the capabilities above it in the
 * bounding set. */
static int last_cap(void) {
  int c = 0;
  while (c < 63 && prctl(PR_CAPBSET_READ, c + 1, 0, 0, 0) >= 0) c++;
  return c;
}

int crib_process_identity(json_t *process, char *warn, size_t warn_n, crib_err *err) {
  warn[0] = '\0';
  json_t *user = json_object_get(process, "user");
  uid_t uid = (uid_t)crib_json_int(user, "uid", 0);
  gid_t gid = (gid_t)crib_json_int(user, "gid", 0);
  json_t *caps = json_object_get(process, "capabilities");
  uint64_t bnd = 0, eff = 0, inh = 0, prm = 0, amb = 0;
  cap_mask(caps, "bounding", &bnd, warn, warn_n);
  cap_mask(caps, "effective", &eff, warn, warn_n);
  cap_mask(caps, "inheritable", &inh, warn, warn_n);
  cap_mask(caps, "permitted", &prm, warn, warn_n);
  cap_mask(caps, "ambient", &amb, warn, warn_n);

  /* Drop from the bounding set while we still hold CAP_SETPCAP. */
  int last = last_cap();
  for (int c = 0; c <= last && c < 64; c++) {
    if (bnd & (1ULL << c)) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
      return crib_fail(err, errno, "drop capability %s from the bounding set",
                       crib_cap_name(c) ? crib_cap_name(c) : "?");
  }
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return crib_fail(err, errno, "prctl PR_SET_KEEPCAPS");

  size_t ng = json_array_size(json_object_get(user, "additionalGids"));
  gid_t groups[ng ? ng : 1];
  for (size_t i = 0; i < ng; i++)
    groups[i] = (gid_t)json_integer_value(json_array_get(json_object_get(user, "additionalGids"), i));
  /* setgroups is denied in a user namespace whose setgroups file says "deny"; then only an
   * empty request can be skipped. */
  if (setgroups(ng, groups) < 0 && !(errno == EPERM && ng == 0))
    return crib_fail(err, errno, "process.user.additionalGids: setgroups");
  if (setresgid(gid, gid, gid) < 0) return crib_fail(err, errno, "process.user.gid %u: setresgid", gid);
  if (setresuid(uid, uid, uid) < 0) return crib_fail(err, errno, "process.user.uid %u: setresuid", uid);

  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2] = {
      {.effective = (uint32_t)eff, .permitted = (uint32_t)prm, .inheritable = (uint32_t)inh},
      {.effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(prm >> 32),
       .inheritable = (uint32_t)(inh >> 32)}};
  if (syscall(SYS_capset, &hdr, data) < 0) return crib_fail(err, errno, "process.capabilities: capset");
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) return crib_fail(err, errno, "prctl PR_SET_KEEPCAPS");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return crib_fail(err, errno, "clear ambient capabilities");
  for (int c = 0; c < 64; c++) {
    if (!(amb & (1ULL << c))) continue;
    /* Ambient needs the cap in permitted and inheritable; skip silently otherwise (runc). */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0 && errno != EPERM)
      return crib_fail(err, errno, "raise ambient capability %s", crib_cap_name(c) ? crib_cap_name(c) : "?");
  }
  return 0;
}

void crib_lsm_probe(crib_lsm_host *host) {
  char buf[8];
  crib_err e;
  /* As runc and containerd decide it: securityfs shows AppArmor's directory and the module says
   * it is enabled. A host without the LSM has no such file: absent, as any unreadable answer is. */
  host->apparmor = access("/sys/kernel/security/apparmor", F_OK) == 0 &&
                   crib_read_file("/sys/module/apparmor/parameters/enabled", buf, sizeof buf, NULL, &e) == 0 &&
                   buf[0] == 'Y';
  host->selinux = access("/sys/fs/selinux/enforce", R_OK) == 0;
}

static void append_warning(char *warn, size_t warn_n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void append_warning(char *warn, size_t warn_n, const char *fmt, ...) {
  size_t len = strlen(warn);
  if (len) snprintf(warn + len, warn_n - len, "\n");
  len = strlen(warn);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(warn + len, warn_n - len, fmt, ap);
  va_end(ap);
}

int crib_process_lsm(json_t *process, const crib_lsm_host *host, int proc, char *warn, size_t warn_n,
                     crib_err *err) {
  warn[0] = '\0';
  /* attr/exec is per thread: thread-self, through the private procfs handle. */
  const char *profile = crib_json_str(process, "apparmorProfile");
  if (profile && *profile) {
    if (!host->apparmor) {
      append_warning(warn, warn_n, "warning: process.apparmorProfile `%s` ignored: AppArmor is not enabled on this host", profile);
    } else {
      char buf[1024];
      int n = snprintf(buf, sizeof buf, "exec %s", profile);
      if (n < 0 || (size_t)n >= sizeof buf)
        return crib_fail(err, ENAMETOOLONG, "process.apparmorProfile `%s`", profile);
      const char *attr = crib_procfs_exists(proc, "thread-self/attr/apparmor/exec") ? "thread-self/attr/apparmor/exec"
                                                                                   : "thread-self/attr/exec";
      if (crib_procfs_write(proc, attr, buf, (size_t)n, err) < 0)
        return crib_err_wrap(err, "process.apparmorProfile `%s`", profile);
    }
  }
  const char *label = crib_json_str(process, "selinuxLabel");
  if (label && *label) {
    if (!host->selinux) {
      append_warning(warn, warn_n, "warning: process.selinuxLabel `%s` ignored: SELinux is not enabled on this host", label);
    } else if (crib_procfs_write(proc, "thread-self/attr/exec", label, strlen(label), err) < 0) {
      return crib_err_wrap(err, "process.selinuxLabel `%s`", label);
    }
  }
  return 0;
}

int crib_process_finish(json_t *process, crib_err *err) {
  json_t *user = json_object_get(process, "user");
  umask((mode_t)crib_json_int(user, "umask", 022));
  if (crib_json_bool(process, "noNewPrivileges", false) &&
      prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return crib_fail(err, errno, "process.noNewPrivileges: prctl");
  return 0;
}

static const char *env_path(json_t *process) {
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(process, "env"), i, v) {
    const char *s = json_string_value(v);
    if (s && strncmp(s, "PATH=", 5) == 0) return s + 5;
  }
  return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

static bool is_executable(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, X_OK) == 0;
}

int crib_process_find(json_t *process, char *out, size_t n, crib_err *err) {
  const char *arg0 = json_string_value(json_array_get(json_object_get(process, "args"), 0));
  if (strchr(arg0, '/')) {
    if (!is_executable(arg0)) {
      struct stat sb;
      int e = stat(arg0, &sb) < 0 ? errno : EACCES;
      return crib_fail(err, e, "exec `%s`", arg0);
    }
    snprintf(out, n, "%s", arg0);
    return 0;
  }
  const char *path = env_path(process);
  while (*path) {
    size_t len = strcspn(path, ":");
    char cand[PATH_MAX];
    if (len == 0) snprintf(cand, sizeof cand, "./%s", arg0);
    else if (len < sizeof cand - 2 && CRIB_FMT(cand, "%.*s/%s", (int)len, path, arg0)) {
    } else cand[0] = '\0';
    if (cand[0] && is_executable(cand)) {
      snprintf(out, n, "%s", cand);
      return 0;
    }
    path += len;
    if (*path == ':') path++;
  }
  crib_fail(err, 0, "exec `%s`: executable file not found in $PATH", arg0);
  err->errnum = ENOENT;
  return -1;
}

char **crib_process_strv(json_t *arr) {
  size_t n = json_array_size(arr);
  char **v = calloc(n + 1, sizeof *v);
  if (!v) return NULL;
  for (size_t i = 0; i < n; i++) v[i] = (char *)json_string_value(json_array_get(arr, i));
  return v;
}
