// What a runtime handler can do, as kubelet asks for it in Status.runtimeHandlers[].features.
// Read from the handler's own `features` command (the OCI features document runc, crun >= 1.9
// and crib-runtime print) and checked against the kernel, like containerd does: a runtime that
// knows "rro" is no use on a kernel without mount_setattr(2).
//
// User namespaces (KEP-127) need the handler to join a pinned user namespace and to idmap bind
// mounts (volumes): the features document says so with linux.namespaces containing "user" and
// linux.mountExtensions.idmap.enabled (runc >= 1.2, crib-runtime). The rootfs is the daemon's
// overlay on idmapped layer mounts, which overlayfs accepts from Linux 5.19. Debian 12's runc
// 1.1.5 has no mountExtensions and its crun 1.8.1 no `features` command: neither is reported.
import { execFile } from 'node:child_process';
import { release } from 'node:os';
import { log } from '../log.js';

export interface RuntimeFeatures {
  /** Recursive read-only bind mounts (CRI Mount.recursiveReadOnly, OCI option "rro"). */
  recursiveReadOnly: boolean;
  /** Pods in their own user namespace (usernsOptions POD) with idmapped mounts. */
  userNamespaces: boolean;
}

export const NO_FEATURES: RuntimeFeatures = { recursiveReadOnly: false, userNamespaces: false };

function kernelAtLeast(kernelRelease: string, wantMajor: number, wantMinor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > wantMajor || (major === wantMajor && minor >= wantMinor);
}

/** mount_setattr(2) with AT_RECURSIVE, which "rro" needs, arrived in Linux 5.12. */
export function kernelHasMountSetattr(kernelRelease = release()): boolean {
  return kernelAtLeast(kernelRelease, 5, 12);
}

/** overlayfs on idmapped lower layers arrived in Linux 5.19. */
export function kernelHasIdmappedOverlay(kernelRelease = release()): boolean {
  return kernelAtLeast(kernelRelease, 5, 19);
}

interface FeaturesDocument {
  mountOptions?: unknown;
  linux?: { namespaces?: unknown; mountExtensions?: { idmap?: { enabled?: unknown } } };
}

/** The features a features document (OCI runtime-spec features.md) promises on this kernel. */
export function featuresOf(doc: FeaturesDocument, kernelRelease = release()): RuntimeFeatures {
  const options = Array.isArray(doc.mountOptions) ? doc.mountOptions : [];
  const namespaces = Array.isArray(doc.linux?.namespaces) ? doc.linux.namespaces : [];
  return {
    recursiveReadOnly: options.includes('rro') && kernelHasMountSetattr(kernelRelease),
    userNamespaces: namespaces.includes('user') && doc.linux?.mountExtensions?.idmap?.enabled === true &&
      kernelHasIdmappedOverlay(kernelRelease),
  };
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
        resolve(featuresOf(JSON.parse(stdout) as FeaturesDocument));
      } catch (parseErr) {
        log.warn({ handler, binary, err: (parseErr as Error).message }, 'runtime handler printed an unreadable features document; assuming none');
        resolve(NO_FEATURES);
      }
    });
  });
}
