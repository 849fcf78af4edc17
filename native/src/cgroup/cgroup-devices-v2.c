/* Device rules on cgroup v2. v2 has no devices.allow/deny files: the kernel asks a
 * BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup, once per device access. The OCI
 * list is ordered and the last matching rule wins, so the program tests the rules from the last
 * to the first and returns the verdict of the first match; nothing matching means deny (the
 * deny-all base that v1 gets from writing "a" to devices.deny).
 *
 * Program shape, per rule (registers: R2 type, R3 access, R4 major, R5 minor):
 *     if R2 != <type>           goto next     (omitted for type 'a')
 *     R1 = R3 & <access>; if R1 != R3 goto next   (request must be a subset; omitted for rwm)
 *     if R4 != <major>          goto next     (omitted for wildcard)
 *     if R5 != <minor>          goto next     (omitted for wildcard)
 *     R0 = <allow>; exit
 *   next: ...                                                                          */
#include "cgroup-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define INSN(c, d, s, o, i) \
  ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
/* Placeholder offset of a "goto next" until the rule's block length is known. */
#define JUMP_NEXT INT16_MIN
#define MAX_RULES 2048

typedef struct {
  struct bpf_insn *v;
  size_t n, cap;
} program;

static int emit(program *p, const struct bpf_insn *insns, size_t n, crib_err *err) {
  if (p->n + n > p->cap) {
    size_t cap = (p->cap ? p->cap : 64) * 2 + n;
    struct bpf_insn *bigger = realloc(p->v, cap * sizeof *bigger);
    if (bigger == NULL) return crib_fail(err, ENOMEM, "build device filter");
    p->v = bigger;
    p->cap = cap;
  }
  memcpy(p->v + p->n, insns, n * sizeof *insns);
  p->n += n;
  return 0;
}

/* Emit one rule's block; *catch_all when it matches every access (what follows is dead code,
 * which the verifier refuses, so the caller stops there). */
static int emit_rule(program *p, const crib_cgi_device_rule *r, bool *catch_all, crib_err *err) {
  struct bpf_insn b[8];
  size_t n = 0;
  if (r->type != 'a')
    b[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, JUMP_NEXT,
                  r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
  int access = 0;
  for (const char *a = r->access; *a; a++)
    access |= *a == 'r' ? BPF_DEVCG_ACC_READ : *a == 'w' ? BPF_DEVCG_ACC_WRITE : BPF_DEVCG_ACC_MKNOD;
  const int rwm = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;
  if (access != rwm) {
    b[n++] = INSN(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0);
    b[n++] = INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_1, 0, 0, access);
    b[n++] = INSN(BPF_JMP | BPF_JNE | BPF_X, BPF_REG_1, BPF_REG_3, JUMP_NEXT, 0);
  }
  if (r->major >= 0)
    b[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, JUMP_NEXT, (int32_t)r->major);
  if (r->minor >= 0)
    b[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, JUMP_NEXT, (int32_t)r->minor);
  *catch_all = n == 0;
  b[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, r->allow ? 1 : 0);
  b[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  /* "next" is the instruction after this block; offsets count from the following insn. */
  for (size_t i = 0; i < n; i++)
    if (b[i].off == JUMP_NEXT) b[i].off = (int16_t)(n - i - 1);
  return emit(p, b, n, err);
}

static int build(json_t *devices, program *p, crib_err *err) {
  size_t count = json_array_size(devices);
  if (count > MAX_RULES)
    return crib_fail(err, 0, "linux.resources.devices: %zu rules, at most %d supported", count,
                     MAX_RULES);
  const struct bpf_insn prologue[] = {
      INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, 0, 0), /* access_type */
      INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff),  /* low half: device type */
      INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_1, 0, 0),
      INSN(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16),      /* high half: access */
      INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_4, BPF_REG_1, 4, 0), /* major */
      INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_5, BPF_REG_1, 8, 0), /* minor */
  };
  if (emit(p, prologue, sizeof prologue / sizeof prologue[0], err) < 0) return -1;
  for (size_t i = count; i-- > 0;) {
    crib_cgi_device_rule rule;
    bool catch_all;
    if (crib_cgi_device_rule_parse(json_array_get(devices, i), i, &rule, err) < 0) return -1;
    if (emit_rule(p, &rule, &catch_all, err) < 0) return -1;
    if (catch_all) return 0;
  }
  const struct bpf_insn deny[] = {
      INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0),
      INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  return emit(p, deny, 2, err);
}

static long sys_bpf(int cmd, union bpf_attr *attr) {
  return syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

static int load(const program *p, int *fd, crib_err *err) {
  static const char license[] = "Apache-2.0";
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (uint64_t)(uintptr_t)p->v;
  attr.insn_cnt = (uint32_t)p->n;
  attr.license = (uint64_t)(uintptr_t)license;
  *fd = (int)sys_bpf(BPF_PROG_LOAD, &attr);
  if (*fd >= 0) return 0;
  int saved = errno;
  if (saved != EINVAL && saved != EACCES)
    return crib_fail(err, saved, "bpf BPF_PROG_LOAD (device filter, %zu instructions)", p->n);
  /* Ask again with the verifier's log: it says which instruction it refused. */
  char *log = calloc(1, 65536);
  if (log != NULL) {
    attr.log_buf = (uint64_t)(uintptr_t)log;
    attr.log_size = 65536;
    attr.log_level = 1;
    int again = (int)sys_bpf(BPF_PROG_LOAD, &attr);
    if (again >= 0) close(again);
  }
  crib_fail(err, saved, "bpf BPF_PROG_LOAD (device filter, %zu instructions): verifier: %.900s",
            p->n, log ? log : "");
  free(log);
  return -1;
}

/* Attach prog to the cgroup, then detach the programs a previous apply attached, so an update
 * replaces the rules without a moment where none is in force. */
static int attach(const char *dir, int prog, crib_err *err) {
  int cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) return crib_fail(err, errno, "open %s", dir);
  uint32_t old[64];
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.query.target_fd = (uint32_t)cg;
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  attr.query.prog_ids = (uint64_t)(uintptr_t)old;
  attr.query.prog_cnt = 64;
  if (sys_bpf(BPF_PROG_QUERY, &attr) < 0) {
    int saved = errno;
    close(cg);
    return crib_fail(err, saved, "bpf BPF_PROG_QUERY %s", dir);
  }
  uint32_t n_old = attr.query.prog_cnt;

  memset(&attr, 0, sizeof attr);
  attr.target_fd = (uint32_t)cg;
  attr.attach_bpf_fd = (uint32_t)prog;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0) {
    int saved = errno;
    close(cg);
    return crib_fail(err, saved, "bpf BPF_PROG_ATTACH device filter to %s", dir);
  }
  int rc = 0;
  for (uint32_t i = 0; i < n_old && i < 64 && rc == 0; i++) {
    memset(&attr, 0, sizeof attr);
    attr.prog_id = old[i];
    int fd = (int)sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
    if (fd < 0) {
      if (errno == ENOENT) continue; /* detached meanwhile */
      rc = crib_fail(err, errno, "bpf BPF_PROG_GET_FD_BY_ID %u", old[i]);
      break;
    }
    memset(&attr, 0, sizeof attr);
    attr.target_fd = (uint32_t)cg;
    attr.attach_bpf_fd = (uint32_t)fd;
    attr.attach_type = BPF_CGROUP_DEVICE;
    if (sys_bpf(BPF_PROG_DETACH, &attr) < 0 && errno != ENOENT)
      rc = crib_fail(err, errno, "bpf BPF_PROG_DETACH old device filter %u from %s", old[i], dir);
    close(fd);
  }
  close(cg);
  return rc;
}

int crib_cgi_devices_v2(const char *dir, json_t *devices, crib_err *err) {
  program p = {0};
  if (build(devices, &p, err) < 0) {
    free(p.v);
    return -1;
  }
  int prog;
  crib_err load_err;
  int rc = load(&p, &prog, &load_err);
  free(p.v);
  if (rc < 0) {
    /* No bpf(2) here (kernel without it, or a user namespace denying it): the container can
     * still run, the operator must know its device rules are not in force. */
    if (load_err.errnum == ENOSYS || load_err.errnum == EPERM) {
      crib_cgi_warn("device cgroup rules are not enforced on %s: %s", dir, load_err.msg);
      return 0;
    }
    *err = load_err;
    return -1;
  }
  rc = attach(dir, prog, err);
  close(prog);
  return rc;
}
