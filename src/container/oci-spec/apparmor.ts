// Which AppArmor profile a container runs under (process.apparmorProfile; exec'd processes take
// the container's process, so they get it too). The CRI `apparmor` SecurityProfile wins over the
// deprecated `apparmor_profile` string ("runtime/default", "unconfined", "localhost/<name>").
//
// As containerd does it:
//   - host with AppArmor: RuntimeDefault — and no profile at all — is crib-default (loaded on
//     demand), except for privileged containers, which run unconfined; Localhost is the named
//     profile, which must already be loaded (NOT_FOUND otherwise), privileged or not;
//     Unconfined is no profile.
//   - host without AppArmor: nothing is applied; Unconfined and RuntimeDefault are accepted,
//     an explicit Localhost profile is refused: the pod asked for a confinement this node
//     cannot give. (containerd 2.x refuses an explicit RuntimeDefault there too; crib accepts
//     it, as the CRI's default profile is "whatever the runtime's default is", which here is none.)
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../errors.js';
import type { LinuxContainerSecurityContext__Output } from '../../gen/runtime/v1/LinuxContainerSecurityContext.js';
import { DEFAULT_APPARMOR_PROFILE } from './apparmor-default-profile.js';
import { APPARMOR_PROFILES_FILE, type AppArmorHost } from './lsm-host.js';

export type AppArmorChoice =
  | { kind: 'unset' }
  | { kind: 'unconfined' }
  | { kind: 'runtime-default' }
  | { kind: 'localhost'; name: string; field: string };

/** A profile name as crib-runtime writes it ("exec <name>"): printable, no spaces, bounded. */
function profileName(ref: string, field: string): string {
  // kubelet sends the bare name; containerd also strips a "localhost/" left on it.
  const name = ref.startsWith('localhost/') ? ref.slice('localhost/'.length) : ref;
  if (name === '') throw new InvalidArgumentError(`${field}: a Localhost AppArmor profile needs a profile name`);
  if (name.length > 1024 || !/^[\x21-\x7e]+$/.test(name)) {
    throw new InvalidArgumentError(`${field} "${name.slice(0, 64)}" is not an AppArmor profile name (printable ASCII, no spaces, at most 1024 bytes)`);
  }
  return name;
}

/** The profile the security context asks for, before the host is considered. */
export function apparmorChoice(sc: LinuxContainerSecurityContext__Output | null | undefined): AppArmorChoice {
  const sp = sc?.apparmor;
  if (sp) {
    const field = 'securityContext.apparmor';
    if (sp.profileType !== 'Localhost' && sp.localhostRef) {
      throw new InvalidArgumentError(`${field}.localhostRef is set but profileType is ${sp.profileType}: it is only for Localhost`);
    }
    switch (sp.profileType) {
      case 'RuntimeDefault':
        return { kind: 'runtime-default' };
      case 'Unconfined':
        return { kind: 'unconfined' };
      case 'Localhost':
        return { kind: 'localhost', name: profileName(sp.localhostRef, `${field}.localhostRef`), field: `${field}.localhostRef` };
      default:
        throw new InvalidArgumentError(`${field}.profileType ${String(sp.profileType)} is not RuntimeDefault, Unconfined or Localhost`);
    }
  }
  const s = sc?.apparmorProfile ?? '';
  const field = 'securityContext.apparmorProfile';
  if (s === '') return { kind: 'unset' };
  if (s === 'runtime/default') return { kind: 'runtime-default' };
  if (s === 'unconfined') return { kind: 'unconfined' };
  if (s.startsWith('localhost/')) return { kind: 'localhost', name: profileName(s, field), field };
  throw new InvalidArgumentError(`${field} "${s.slice(0, 64)}" is not "runtime/default", "unconfined" or "localhost/<profile>"`);
}

/**
 * process.apparmorProfile for the container, or undefined for none. `host` is the node's
 * AppArmor (undefined when it has none); loads crib-default when it is the answer.
 */
export async function containerApparmorProfile(
  sc: LinuxContainerSecurityContext__Output | null | undefined,
  privileged: boolean,
  host: AppArmorHost | undefined,
): Promise<string | undefined> {
  const choice = apparmorChoice(sc);
  if (!host) {
    if (choice.kind === 'localhost') {
      throw new FailedPreconditionError(
        `${choice.field}: AppArmor profile "${choice.name}" cannot be applied: AppArmor is not enabled on this node ` +
        '(/sys/module/apparmor/parameters/enabled is not "Y" or securityfs shows no apparmor directory)',
      );
    }
    return undefined;
  }
  switch (choice.kind) {
    case 'unconfined':
      return undefined;
    case 'unset':
    case 'runtime-default':
      if (privileged) return undefined;
      await host.ensureDefaultProfile();
      return DEFAULT_APPARMOR_PROFILE;
    case 'localhost':
      if (!(await host.isLoaded(choice.name))) {
        throw new NotFoundError(
          `${choice.field}: AppArmor profile "${choice.name}" is not loaded on this node (not listed in ${APPARMOR_PROFILES_FILE}); ` +
          'load it with apparmor_parser first',
        );
      }
      return choice.name;
  }
}
