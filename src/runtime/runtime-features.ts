// What a runtime handler can do, as kubelet asks for it in Status.runtimeHandlers[].features.
// Read from the handler's own `features` command (the OCI features document runc, crun >= 1.9
// and crib-runtime print) and checked against the kernel, like containerd does: a runtime that
// knows "rro" is no use on a kernel without mount_setattr(2).
import { execFile } from 'node:child_process';
import { release } from 'node:os';
import { log } from '../log.js';

export interface RuntimeFeatures {
  /** Recursive read-only bind mounts (CRI Mount.recursiveReadOnly, OCI option "rro"). */
  recursiveReadOnly: boolean;
}

export const NO_FEATURES: RuntimeFeatures = { recursiveReadOnly: false };

/** mount_setattr(2) with AT_RECURSIVE, which "rro" needs, arrived in Linux 5.12. */
export function kernelHasMountSetattr(kernelRelease = release()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 5 || (major === 5 && minor >= 12);
}

/** The features a handler binary reports; none when it has no `features` command. */
export function probeRuntimeFeatures(handler: string, binary: string): Promise<RuntimeFeatures> {
  return new Promise((resolve) => {
    execFile(binary, ['features'], { timeout: 10_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) {
        log.info({ handler, binary, err: (stderr || err.message).trim() }, 'runtime handler has no features document; assuming none');
        resolve(NO_FEATURES);
        return;
      }
      try {
        const doc = JSON.parse(stdout) as { mountOptions?: unknown };
        const options = Array.isArray(doc.mountOptions) ? doc.mountOptions : [];
        resolve({ recursiveReadOnly: options.includes('rro') && kernelHasMountSetattr() });
      } catch (parseErr) {
        log.warn({ handler, binary, err: (parseErr as Error).message }, 'runtime handler printed an unreadable features document; assuming none');
        resolve(NO_FEATURES);
      }
    });
  });
}
