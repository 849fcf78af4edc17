#include "seccomp-filter.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spec.h"

/* eret: errnoRet (or defaultErrnoRet), -1 when absent: EPERM then. */
static int parse_action(const char *name, long long eret, uint32_t *out, crib_err *err) {
  if (strcmp(name, "SCMP_ACT_ALLOW") == 0) *out = SCMP_ACT_ALLOW;
  else if (strcmp(name, "SCMP_ACT_ERRNO") == 0) *out = SCMP_ACT_ERRNO(eret >= 0 ? (uint16_t)eret : EPERM);
  else if (strcmp(name, "SCMP_ACT_KILL") == 0 || strcmp(name, "SCMP_ACT_KILL_THREAD") == 0) *out = SCMP_ACT_KILL_THREAD;
  else if (strcmp(name, "SCMP_ACT_KILL_PROCESS") == 0) *out = SCMP_ACT_KILL_PROCESS;
  else if (strcmp(name, "SCMP_ACT_TRAP") == 0) *out = SCMP_ACT_TRAP;
  else if (strcmp(name, "SCMP_ACT_TRACE") == 0) *out = SCMP_ACT_TRACE(eret >= 0 ? (uint16_t)eret : EPERM);
  else if (strcmp(name, "SCMP_ACT_LOG") == 0) *out = SCMP_ACT_LOG;
  else return crib_fail(err, 0, "unsupported seccomp action `%s`", name);
  return 0;
}

static int parse_op(const char *op, enum scmp_compare *out) {
  static const struct { const char *n; enum scmp_compare c; } ops[] = {
      {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ}, {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (strcmp(ops[i].n, op) == 0) {
      *out = ops[i].c;
      return 0;
    }
  return -1;
}

static int add_rule(scmp_filter_ctx ctx, json_t *rule, size_t idx, uint32_t def, crib_err *err) {
  const char *action = crib_json_str(rule, "action");
  if (!action) return crib_fail(err, 0, "linux.seccomp.syscalls[%zu]: action is required", idx);
  uint32_t act;
  if (parse_action(action, crib_json_int(rule, "errnoRet", -1), &act, err) < 0)
    return crib_err_wrap(err, "linux.seccomp.syscalls[%zu]", idx);
  if (act == def) return 0; /* libseccomp rejects rules equal to the default */
  struct scmp_arg_cmp cmps[6];
  unsigned n = 0;
  size_t i;
  json_t *a;
  json_array_foreach(json_object_get(rule, "args"), i, a) {
    if (n >= 6) return crib_fail(err, 0, "linux.seccomp.syscalls[%zu]: more than 6 args", idx);
    enum scmp_compare op;
    const char *ops = crib_json_str(a, "op");
    if (!ops || parse_op(ops, &op) < 0)
      return crib_fail(err, 0, "linux.seccomp.syscalls[%zu].args[%zu]: bad op `%s`", idx, i,
                       ops ? ops : "");
    cmps[n].arg = (unsigned)crib_json_int(a, "index", 0);
    cmps[n].op = op;
    cmps[n].datum_a = (scmp_datum_t)crib_json_int(a, "value", 0);
    cmps[n].datum_b = (scmp_datum_t)crib_json_int(a, "valueTwo", 0);
    n++;
  }
  json_t *name;
  json_array_foreach(json_object_get(rule, "names"), i, name) {
    if (!json_is_string(name)) continue;
    int nr = seccomp_syscall_resolve_name(json_string_value(name));
    /* Profiles list syscalls of every kernel; unknown ones are skipped, as runc does. */
    if (nr == __NR_SCMP_ERROR) continue;
    int rc = seccomp_rule_add_array(ctx, act, nr, n, cmps);
    if (rc < 0)
      return crib_fail(err, -rc, "linux.seccomp.syscalls[%zu]: add rule for `%s`", idx,
                       json_string_value(name));
  }
  return 0;
}

int crib_seccomp_compile(json_t *sc, scmp_filter_ctx *out, crib_err *err) {
  *out = NULL;
  if (!json_is_object(sc)) return 0;
  const char *defname = crib_json_str(sc, "defaultAction");
  if (!defname) return crib_fail(err, 0, "linux.seccomp.defaultAction is required");
  uint32_t def;
  if (parse_action(defname, crib_json_int(sc, "defaultErrnoRet", -1), &def, err) < 0) return crib_err_wrap(err, "linux.seccomp.defaultAction");
  scmp_filter_ctx ctx = seccomp_init(def);
  if (!ctx) return crib_fail(err, EINVAL, "seccomp_init");
  /* The spec's noNewPrivileges decides that, not libseccomp's default. */
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(sc, "architectures"), i, v) {
    if (rc < 0 || !json_is_string(v)) break;
    const char *a = json_string_value(v);
    if (strncmp(a, "SCMP_ARCH_", 10) == 0) a += 10;
    char lower[32];
    size_t k = 0;
    for (; a[k] && k < sizeof lower - 1; k++) lower[k] = (char)tolower((unsigned char)a[k]);
    lower[k] = '\0';
    uint32_t arch = seccomp_arch_resolve_name(lower);
    if (!arch) {
      seccomp_release(ctx);
      return crib_fail(err, 0, "linux.seccomp.architectures: unknown `%s`", json_string_value(v));
    }
    rc = seccomp_arch_add(ctx, arch);
    if (rc == -EEXIST) rc = 0;
  }
  json_array_foreach(json_object_get(sc, "flags"), i, v) {
    if (rc < 0) break;
    const char *f = json_string_value(v);
    if (!f) continue;
    if (strcmp(f, "SECCOMP_FILTER_FLAG_LOG") == 0) rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
    else if (strcmp(f, "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0) rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1);
    else if (strcmp(f, "SECCOMP_FILTER_FLAG_TSYNC") == 0) rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    else {
      seccomp_release(ctx);
      return crib_fail(err, 0, "linux.seccomp.flags: unsupported `%s`", f);
    }
  }
  if (rc < 0) {
    seccomp_release(ctx);
    return crib_fail(err, -rc, "linux.seccomp: configure filter");
  }
  json_array_foreach(json_object_get(sc, "syscalls"), i, v) {
    if (add_rule(ctx, v, i, def, err) < 0) {
      seccomp_release(ctx);
      return -1;
    }
  }
  *out = ctx;
  return 0;
}

int crib_seccomp_load(scmp_filter_ctx ctx, crib_err *err) {
  if (!ctx) return 0;
  int rc = seccomp_load(ctx);
  if (rc < 0) return crib_fail(err, -rc, "load seccomp filter");
  return 0;
}
