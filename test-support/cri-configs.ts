// PodSandboxConfig as the end-to-end tests build them: a unique uid per pod (kubelet's pod
// UID), a log directory named after it, the hostname set to the name, and any field overridden by
// `extra`.
import { join } from 'node:path';

let created = 0;

/** A podConfig(name, extra) for one test file: pods in `namespace`, logs under `logDir`. */
export function podConfigFactory(namespace: string, logDir: string) {
  return (name: string, extra: Record<string, unknown> = {}) => {
    const n = created++;
    return {
      metadata: { name, namespace, uid: `uid-${name}-${process.pid}-${n}`, attempt: 0 },
      hostname: name,
      logDirectory: join(logDir, name),
      labels: { app: name },
      linux: {},
      ...extra,
    };
  };
}
