// Which Linux security modules this node runs, and the AppArmor operations container creation
// needs: is a profile loaded, and load crib's default profile when it is not.
//
// Detection is the one runc and containerd use: AppArmor is enabled when securityfs shows its
// directory (/sys/kernel/security/apparmor) and the module's `enabled` parameter reads "Y";
// SELinux is enabled when selinuxfs is mounted at /sys/fs/selinux with a readable `enforce`.
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { FailedPreconditionError, errnoCode } from '../../errors.js';
import { DEFAULT_APPARMOR_PROFILE, defaultProfileText, hostForDefaultProfile, profileNameOf } from './apparmor-default-profile.js';
import { checkLabelsDefined, readSelinuxDefaults, type SelinuxDefaults, type SelinuxLabels } from './selinux.js';

export const APPARMOR_PROFILES_FILE = '/sys/kernel/security/apparmor/profiles';
/** A bound on the loaded-profiles list we read (a host with thousands of profiles stays well below). */
const PROFILES_FILE_MAX = 16 << 20;

export interface AppArmorHost {
  /** Is a profile of this exact name loaded (any mode)? */
  isLoaded(name: string): Promise<boolean>;
  /** Make sure crib-default is loaded; loads it (once at a time) when it is not. */
  ensureDefaultProfile(): Promise<void>;
}

/** What the node runs; a module that is absent is undefined (unit tests state none). */
export interface LsmHost {
  apparmor?: AppArmorHost;
  /** SELinux: the policy's default container contexts, and its check that labels are defined. */
  selinux?: { defaults: SelinuxDefaults; checkDefined(labels: SelinuxLabels, fromOptions: boolean): void };
}

export function apparmorEnabled(): boolean {
  if (!existsSync('/sys/kernel/security/apparmor')) return false;
  try {
    return readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').startsWith('Y');
  } catch {
    return false;
  }
}

export function selinuxEnabled(): boolean {
  try {
    accessSync('/sys/fs/selinux/enforce', constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** Does the kernel's list (lines "name (mode)") hold the profile `name`? */
export function profileListed(profilesFile: string, name: string): boolean {
  return profilesFile.split('\n').some((line) => line.startsWith(`${name} (`));
}

async function readProfiles(): Promise<string> {
  try {
    const text = await readFile(APPARMOR_PROFILES_FILE, 'utf8');
    return text.length > PROFILES_FILE_MAX ? text.slice(0, PROFILES_FILE_MAX) : text;
  } catch (err) {
    throw new FailedPreconditionError(
      `AppArmor is enabled but ${APPARMOR_PROFILES_FILE} cannot be read (${errnoCode(err) ?? (err as Error).message}): is securityfs mounted?`,
      { cause: err },
    );
  }
}

/** apparmor_parser -Kr (replace, skip the cache) fed the profile on stdin. */
function loadProfile(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile('apparmor_parser', ['-Kr'], { timeout: 60_000, maxBuffer: 1 << 20 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const why = errnoCode(err) === 'ENOENT'
        ? 'apparmor_parser is not installed (Debian package apparmor)'
        : `apparmor_parser -Kr failed: ${(stderr || err.message).trim().slice(0, 2000)}`;
      reject(new FailedPreconditionError(`cannot load the AppArmor profile ${DEFAULT_APPARMOR_PROFILE}: ${why}`, { cause: err }));
    });
    child.stdin?.on('error', () => undefined); // the exit callback reports what went wrong
    child.stdin?.end(text);
  });
}

export function realAppArmorHost(): AppArmorHost {
  let loading: Promise<void> | undefined;
  return {
    isLoaded: async (name) => profileListed(await readProfiles(), name),
    // Checked on every create, as containerd does: an administrator may have unloaded it.
    // Concurrent creates share one load.
    async ensureDefaultProfile() {
      if (profileListed(await readProfiles(), DEFAULT_APPARMOR_PROFILE)) return;
      loading ??= (async () => {
        let current = 'unconfined';
        try {
          current = profileNameOf(await readFile('/proc/self/attr/current', 'utf8'));
        } catch { /* no attr file: the daemon is unconfined */ }
        await loadProfile(defaultProfileText(hostForDefaultProfile(current)));
      })().finally(() => {
        loading = undefined;
      });
      await loading;
    },
  };
}

export function readLsmHost(): LsmHost {
  return {
    apparmor: apparmorEnabled() ? realAppArmorHost() : undefined,
    selinux: selinuxEnabled() ? { defaults: readSelinuxDefaults(), checkDefined: checkLabelsDefined } : undefined,
  };
}
