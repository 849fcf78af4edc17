// AppArmor applied for real, in the guest whose Debian kernel runs it (this host's kernel does
// not). Each attack is made twice from the same container config — once confined, once
// Unconfined — so a denial is AppArmor's doing and not a read-only /proc or a missing
// capability: the containers hold CAP_SYS_ADMIN and a writable /proc/sys, which is exactly what
// crib-default must still keep out of the kernel's global knobs and out of mount.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guest, waitFor, type Guest } from '../support.js';

const LOCAL = 'crib-test-deny-forbidden';
// A Localhost profile that allows what a container does and denies one file.
const LOCAL_TEXT = `#include <tunables/global>
profile ${LOCAL} flags=(attach_disconnected,mediate_deleted) {
  #include <abstractions/base>
  file,
  network,
  capability,
  signal,
  mount,
  umount,
  deny /tmp/forbidden w,
}
`;

function parser(args: string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = execFile('apparmor_parser', args, (err, _o, stderr) => (err ? reject(new Error(`apparmor_parser ${args.join(' ')}: ${stderr || err.message}`)) : resolve()));
    c.stdin!.end(input);
  });
}

const loaded = () => readFileSync('/sys/kernel/security/apparmor/profiles', 'utf8');

// The attacks, their outcomes printed one per line to a file the test reads back through exec.
const PROBE = [
  'cat /proc/self/attr/current',
  '(echo crib-probe > /proc/sys/kernel/hostname) 2>/dev/null && echo sysctl:written || echo sysctl:denied',
  'mkdir -p /mnt/t && (mount -t tmpfs none /mnt/t) 2>/dev/null && echo mount:done || echo mount:denied',
  '(echo x > /tmp/forbidden) 2>/dev/null && echo forbidden:written || echo forbidden:denied',
  '(echo x > /tmp/allowed) 2>/dev/null && echo allowed:written || echo allowed:denied',
].join('; ');

describe('AppArmor profiles applied to containers and execs', () => {
  let g: Guest;
  let pod: { podSandboxId: string; config: Record<string, any> };
  // CAP_SYS_ADMIN and /proc/sys not read-only: without AppArmor both attacks work.
  const exposed = (apparmor: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}) => ({
    linux: {
      securityContext: {
        capabilities: { addCapabilities: ['SYS_ADMIN'] },
        readonlyPaths: ['/proc/bus'],
        ...(apparmor ? { apparmor } : {}),
        ...extra,
      },
    },
  });

  /** Start a container that runs PROBE into /probe.out and stays up; returns id and its lines. */
  const probe = async (name: string, spec: Record<string, unknown>) => {
    const id = await g.runContainer(pod.podSandboxId, pod.config, name, `(${PROBE}) > /probe.out 2>&1; touch /probe.done; exec sleep 3600`, spec);
    await waitFor(`${name} to finish its probe`, async () => (await g.exec(id, 'test -e /probe.done')).exitCode === 0 || undefined, 120_000);
    const out = (await g.exec(id, 'cat /probe.out')).stdout;
    return { id, lines: out.trim().split('\n') };
  };

  beforeAll(async () => {
    expect(readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim(), 'the guest kernel must run AppArmor').toBe('Y');
    await parser(['-r'], LOCAL_TEXT);
    g = guest('apparmor');
    pod = await g.runPod('apparmor');
  });
  afterAll(async () => {
    await g?.cleanup();
    await parser(['-R'], LOCAL_TEXT).catch(() => undefined);
  });

  it('RuntimeDefault confines the container in crib-default: no kernel sysctl writes, no mount', async () => {
    const { id, lines } = await probe('runtime-default', exposed({ profileType: 'RuntimeDefault' }));
    expect(lines).toEqual(['crib-default (enforce)', 'sysctl:denied', 'mount:denied', 'forbidden:written', 'allowed:written']);
    expect(loaded()).toMatch(/^crib-default \(enforce\)$/m);
    // An exec'd process gets the container's profile too.
    const ex = await g.exec(id, PROBE);
    expect(ex.stdout.trim().split('\n').slice(0, 3)).toEqual(['crib-default (enforce)', 'sysctl:denied', 'mount:denied']);
  });

  it('Unconfined (the control): the same container config can write the sysctl and mount', async () => {
    const { lines } = await probe('unconfined', exposed({ profileType: 'Unconfined' }));
    expect(lines).toEqual(['unconfined', 'sysctl:written', 'mount:done', 'forbidden:written', 'allowed:written']);
  });

  it('no profile asked for is RuntimeDefault (containerd\'s rule); the deprecated string works too', async () => {
    const unset = await probe('unset', exposed(undefined));
    expect(unset.lines.slice(0, 3)).toEqual(['crib-default (enforce)', 'sysctl:denied', 'mount:denied']);
    const str = await probe('string', exposed(undefined, { apparmorProfile: 'runtime/default' }));
    expect(str.lines[0]).toBe('crib-default (enforce)');
  });

  it('a loaded Localhost profile is applied: its denied write fails, other writes work', async () => {
    const { id, lines } = await probe('localhost', exposed({ profileType: 'Localhost', localhostRef: LOCAL }));
    expect(lines).toEqual([`${LOCAL} (enforce)`, 'sysctl:written', 'mount:done', 'forbidden:denied', 'allowed:written']);
    const ex = await g.exec(id, 'cat /proc/self/attr/current; (echo y > /tmp/forbidden) 2>&1; echo rc=$?');
    expect(ex.stdout).toMatch(new RegExp(`^${LOCAL} \\(enforce\\)\\n.*Permission denied\\nrc=1\\n$`, 's'));
  });

  // As critest 1.34 sends them (its "runtime should prefer new apparmor field" specs): the
  // localhostRef carries the "localhost/" prefix, and the deprecated string names a profile that
  // is not loaded — which must not matter, since the structured field wins.
  it('the structured field wins over the deprecated string, and a "localhost/" prefix on localhostRef is taken off', async () => {
    const { lines } = await probe('both-fields', exposed(
      { profileType: 'Localhost', localhostRef: `localhost/${LOCAL}` },
      { apparmorProfile: 'localhost/crib-test-never-loaded' },
    ));
    expect(lines).toEqual([`${LOCAL} (enforce)`, 'sysctl:written', 'mount:done', 'forbidden:denied', 'allowed:written']);
  });

  it('an unloaded Localhost profile is refused with NOT_FOUND naming it', async () => {
    const missing = 'crib-test-never-loaded';
    for (const sc of [{ apparmor: { profileType: 'Localhost', localhostRef: missing } }, { apparmorProfile: `localhost/${missing}` }]) {
      const err = await g.cri.runtime.CreateContainer({
        podSandboxId: pod.podSandboxId, sandboxConfig: pod.config,
        config: g.containerConfig('missing', 'true', { linux: { securityContext: sc } }),
      }).then(() => undefined, (e: { code: number; details: string }) => e);
      expect(err?.code).toBe(5); // NOT_FOUND
      expect(err?.details).toContain(`AppArmor profile "${missing}" is not loaded`);
    }
  });

  it('the runtime\'s features document says AppArmor is enabled here', async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile('native/build/crib-runtime', ['features'], (err, stdout) => (err ? reject(err) : resolve(stdout))));
    expect(JSON.parse(out).linux.apparmor).toEqual({ enabled: true });
  });
});
