/* `features`: what this runtime supports, in the OCI features-document shape. */
#include <seccomp.h>

#include "capabilities.h"
#include "cli.h"
#include "process.h"

int crib_cmd_features(const crib_globals *g, int argc, char **argv, crib_err *err) {
  (void)g;
  (void)argv;
  if (argc > 0) return crib_fail(err, 0, "features takes no arguments");
  const struct scmp_version *v = seccomp_version();
  /* What this host enforces, not what the binary could: a profile asked for on a host without
   * the LSM is not applied (process.h). */
  crib_lsm_host lsm;
  crib_lsm_probe(&lsm);
  json_t *o = json_pack(
      "{s:s, s:s, s:s, s:[s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s],"
      " s:{s:[s,s,s,s,s,s,s,s], s:{s:b, s:b, s:b}, s:{s:b, s:[s,s,s,s,s,s,s], s:[s,s],"
      " s:[s,s,s,s,s,s,s], s:[s,s,s]}, s:{s:b}, s:{s:b}, s:{s:b}}}",
      "ociVersionMin", "1.0.0", "ociVersionMax", "1.0.2", "hooks", "none",
      "mountOptions", "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
      "mand", "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime",
      "nosuid", "private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared", "rslave",
      "runbindable", "rw", "shared", "slave", "strictatime", "suid", "sync",
      "linux",
      "namespaces", "cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time",
      "cgroup", "v1", 1, "v2", 1, "systemd", 0,
      "seccomp", "enabled", 1,
      "actions", "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
      "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRAP",
      "archs", "SCMP_ARCH_X86_64", "SCMP_ARCH_X86",
      "operators", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
      "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE",
      "knownFlags", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
      "SECCOMP_FILTER_FLAG_TSYNC",
      "apparmor", "enabled", lsm.apparmor, "selinux", "enabled", lsm.selinux, "intelRdt", "enabled", 0);
  if (!o) return crib_fail(err, 0, "build features json");
  static const char *recursive[] = {"rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev",
                                    "rnoexec", "rexec", "rnodiratime", "rdiratime",
                                    "rnosymfollow", "rsymfollow"};
  json_t *mo = json_object_get(o, "mountOptions");
  for (size_t i = 0; i < sizeof recursive / sizeof recursive[0]; i++)
    json_array_append_new(mo, json_string(recursive[i]));
  /* Every capability this runtime can name, in number order (OCI features: linux.capabilities). */
  json_t *caps = json_array();
  for (int c = 0; caps && c < CRIB_CAP_COUNT; c++) {
    if (json_array_append_new(caps, json_string(crib_cap_name(c))) < 0) {
      json_decref(caps);
      caps = NULL;
    }
  }
  if (!caps || json_object_set_new(json_object_get(o, "linux"), "capabilities", caps) < 0) {
    json_decref(o);
    return crib_fail(err, 0, "build features json: linux.capabilities");
  }
  /* Idmapped bind mounts (mounts[].uidMappings/gidMappings, idmap-mount.h). */
  if (json_object_set_new(json_object_get(o, "linux"), "mountExtensions",
                          json_pack("{s:{s:b}}", "idmap", "enabled", 1)) < 0) {
    json_decref(o);
    return crib_fail(err, 0, "build features json: linux.mountExtensions");
  }
  /* ("none" above was a placeholder for json_pack.) */
  json_object_set_new(o, "hooks", json_pack("[s,s,s,s,s,s]", "prestart", "createRuntime",
                                            "createContainer", "startContainer", "poststart",
                                            "poststop"));
  char ver[32];
  snprintf(ver, sizeof ver, "%u.%u.%u", v->major, v->minor, v->micro);
  json_object_set_new(o, "annotations",
                      json_pack("{s:s, s:s}", "io.github.seccomp.libseccomp.version", ver,
                                "org.crib.runtime.version", "0.1.0"));
  int rc = crib_print_json(o, err);
  json_decref(o);
  return rc < 0 ? -1 : 0;
}
