// deploy/install.sh into a temporary DESTDIR: the tree it makes, that the installed files are the
// shipped ones, that running it again changes nothing (and never an existing config), that
// --uninstall removes exactly what it put (keeping /etc config unless --purge), that the
// installed package is complete (npm's production dependency tree, loadable; `crib` runs), that
// the installed unit passes `systemd-analyze verify`, and its errors.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url));
const INSTALL = join(CHECKOUT, 'deploy/install.sh');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, opts: { uid?: number; gid?: number; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 240_000, maxBuffer: 16 << 20, ...opts }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      if (err && code === -1) reject(err);
      else resolve({ code, stdout, stderr });
    });
  });
}

const install = (dest: string, ...args: string[]) => run('bash', [INSTALL, ...args], { DESTDIR: dest });

/** Every path below dir, relative and with a leading '/', dirs included; lib/crib's content left out. */
function tree(dir: string, skip = '/usr/local/lib/crib/'): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const rel = `/${relative(dir, p)}`;
      if (rel.startsWith(skip)) continue;
      out.push(rel);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

const mode = (p: string) => (statSync(p).mode & 0o7777).toString(8);

describe('deploy/install.sh', { timeout: 600_000 }, () => {
  let work: string;
  let dest: string;
  let first: Run;

  beforeAll(async () => {
    for (const f of ['dist/cli.js', 'native/build/crib-runtime', 'native/build/crib-monitor', 'native/build/crib-pinns', 'native/build/crib-hostports', 'native/build/crib-libc.node']) {
      if (!existsSync(join(CHECKOUT, f))) throw new Error(`${f} is missing: run npm run build first`);
    }
    work = await mkdtemp(join(tmpdir(), 'crib-install-'));
    dest = join(work, 'root');
    first = await install(dest);
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('installs the package, the binaries, the command, the unit and the configs where they belong', () => {
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(tree(dest)).toEqual([
      '/etc', '/etc/crib', '/etc/crib/config.toml', '/etc/crictl.yaml',
      '/etc/systemd', '/etc/systemd/system', '/etc/systemd/system/crib.service',
      '/usr', '/usr/local', '/usr/local/bin', '/usr/local/bin/crib',
      '/usr/local/lib', '/usr/local/lib/crib',
      '/usr/local/libexec', '/usr/local/libexec/crib',
      '/usr/local/libexec/crib/crib-hostports', '/usr/local/libexec/crib/crib-libc.node', '/usr/local/libexec/crib/crib-monitor',
      '/usr/local/libexec/crib/crib-pinns', '/usr/local/libexec/crib/crib-runtime',
      '/usr/local/share', '/usr/local/share/crib',
      '/usr/local/share/crib/config.toml', '/usr/local/share/crib/copy-production-modules.mjs', '/usr/local/share/crib/crictl.yaml',
      '/usr/local/share/crib/install-manifest', '/usr/local/share/crib/install.sh', '/usr/local/share/crib/kubeadm.yaml',
      '/usr/local/share/crib/kubelet-config.yaml',
      '/usr/local/share/doc', '/usr/local/share/doc/crib', '/usr/local/share/doc/crib/INSTALL.md',
    ]);
    const shipped = (f: string) => readFileSync(join(CHECKOUT, f), 'utf8');
    const installed = (f: string) => readFileSync(join(dest, f), 'utf8');
    expect(installed('/etc/systemd/system/crib.service')).toBe(shipped('deploy/crib.service'));
    expect(installed('/etc/crib/config.toml')).toBe(shipped('deploy/config.toml'));
    expect(installed('/etc/crictl.yaml')).toBe(shipped('deploy/crictl.yaml'));
    expect(installed('/usr/local/share/doc/crib/INSTALL.md')).toBe(shipped('docs/INSTALL.md'));
    for (const b of ['crib-runtime', 'crib-monitor', 'crib-pinns', 'crib-hostports', 'crib-libc.node']) {
      expect(readFileSync(join(dest, '/usr/local/libexec/crib', b)).equals(readFileSync(join(CHECKOUT, 'native/build', b)))).toBe(true);
      expect(mode(join(dest, '/usr/local/libexec/crib', b))).toBe('755');
    }
    expect(mode(join(dest, '/usr/local/bin/crib'))).toBe('755');
    expect(mode(join(dest, '/etc/crib/config.toml'))).toBe('644');
    // The package: the built code, the proto it loads at run time, production dependencies only.
    const lib = join(dest, '/usr/local/lib/crib');
    expect(readdirSync(lib).filter((f) => f !== 'LICENSE').sort()).toEqual(['cri-api', 'dist', 'node_modules', 'package.json']);
    expect(existsSync(join(lib, 'cri-api/api.proto'))).toBe(true);
    for (const dev of ['vitest', 'typescript', 'tsx']) expect(existsSync(join(lib, 'node_modules', dev)), dev).toBe(false);
  });

  it('installs exactly npm\'s production dependency tree, which loads, and a crib command that runs', async () => {
    const lib = join(dest, '/usr/local/lib/crib');
    // npm's own view of the checkout's production tree, as paths below node_modules.
    const ls = await run('npm', ['ls', '--omit=dev', '--all', '--parseable'], {}, { cwd: CHECKOUT });
    expect(ls.code, ls.stderr).toBe(0);
    const modules = join(CHECKOUT, 'node_modules/');
    const wanted = [...new Set(ls.stdout.split('\n').filter((l) => l.startsWith(modules)).map((l) => l.slice(modules.length)))].sort();
    expect(wanted.length).toBeGreaterThan(20);
    // The packages installed: every dir holding a package.json at a package's place.
    const installed: string[] = [];
    const walk = (dir: string, rel: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (!e.isDirectory() || e.name === '.bin') continue;
        if (e.name.startsWith('@')) {
          walk(join(dir, e.name), `${rel}${e.name}/`);
          continue;
        }
        installed.push(`${rel}${e.name}`);
        if (existsSync(join(dir, e.name, 'node_modules'))) walk(join(dir, e.name, 'node_modules'), `${rel}${e.name}/node_modules/`);
      }
    };
    walk(join(lib, 'node_modules'), '');
    expect(installed.sort()).toEqual(wanted);
    // What the daemon and the crib command load at start, imported from inside the package.
    const probe = join(lib, 'dist/.install-probe.mjs');
    await writeFile(probe, "for (const n of ['@grpc/grpc-js', '@grpc/proto-loader', 'smol-toml', 'zod', 'commander', 'undici', 'tar-stream', 'yaml', 'prom-client']) await import(n);\nconsole.log('ok');\n");
    try {
      const r = await run(process.execPath, [probe]);
      expect(r).toMatchObject({ code: 0, stdout: 'ok\n' });
    } finally {
      await rm(probe);
    }
    const version = JSON.parse(readFileSync(join(CHECKOUT, 'package.json'), 'utf8')).version as string;
    const v = await run(join(dest, '/usr/local/bin/crib'), ['--version']);
    expect(v).toMatchObject({ code: 0, stdout: `${version}\n` });
    const help = await run(join(dest, '/usr/local/bin/crib'), ['daemon', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--config/);
  });

  it('installs a unit that systemd-analyze verify accepts', async () => {
    if (!existsSync('/usr/bin/systemd-analyze')) return;
    // Where the prefix would be if DESTDIR were the real root: the only change install --prefix makes.
    const unitDir = join(work, 'verify');
    await mkdir(unitDir, { recursive: true });
    const unit = readFileSync(join(dest, '/etc/systemd/system/crib.service'), 'utf8').replaceAll('/usr/local/', `${dest}/usr/local/`);
    await writeFile(join(unitDir, 'crib.service'), unit);
    const r = await run('systemd-analyze', ['verify', join(unitDir, 'crib.service')]);
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.code).toBe(0);
  });

  it('changes nothing when run again, and never overwrites an existing config', async () => {
    const manifest = () => readFileSync(join(dest, '/usr/local/share/crib/install-manifest'), 'utf8').split('\n').sort();
    const before = manifest();
    const edited = '# edited by the admin\nlog_level = "debug"\n';
    await writeFile(join(dest, '/etc/crib/config.toml'), edited);
    const again = await install(dest);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/kept \/etc\/crib\/config.toml/);
    expect(manifest()).toEqual(before);
    expect(readFileSync(join(dest, '/etc/crib/config.toml'), 'utf8')).toBe(edited);
    expect(readdirSync(join(dest, '/usr/local/lib')).sort()).toEqual(['crib']); // no staging dirs left
    await writeFile(join(dest, '/etc/crib/config.toml'), readFileSync(join(CHECKOUT, 'deploy/config.toml')));
  });

  it('uninstalls exactly what it installed, keeping the /etc config unless --purge', async () => {
    const d = join(work, 'uninstall');
    expect((await install(d)).code).toBe(0);
    // Things that were not install's: they must survive.
    await mkdir(join(d, '/usr/local/bin'), { recursive: true });
    await writeFile(join(d, '/usr/local/bin/other-tool'), 'x');
    await mkdir(join(d, '/var/lib/crib/snapshots'), { recursive: true });
    const plain = await install(d, '--uninstall');
    expect(plain.code).toBe(0);
    expect(tree(d, '/nothing/')).toEqual([
      '/etc', '/etc/crib', '/etc/crib/config.toml', '/etc/crib/install-manifest', '/etc/crictl.yaml',
      '/usr', '/usr/local', '/usr/local/bin', '/usr/local/bin/other-tool',
      '/var', '/var/lib', '/var/lib/crib', '/var/lib/crib/snapshots',
    ]);
    // A later --purge still knows the kept configs are crib's, and takes the state too.
    const purge = await install(d, '--uninstall', '--purge');
    expect(purge.code).toBe(0);
    expect(tree(d, '/nothing/')).toEqual(['/usr', '/usr/local', '/usr/local/bin', '/usr/local/bin/other-tool', '/var', '/var/lib']);
  });

  it('installs to another --prefix, with the unit pointing there', async () => {
    const d = join(work, 'prefix');
    expect((await install(d, '--prefix', '/opt/crib')).code).toBe(0);
    const unit = readFileSync(join(d, '/etc/systemd/system/crib.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\/opt\/crib\/bin\/crib daemon --config \/etc\/crib\/config.toml$/m);
    expect(unit).not.toMatch(/\/usr\/local/);
    expect(existsSync(join(d, '/opt/crib/libexec/crib/crib-runtime'))).toBe(true);
    expect((await run(join(d, '/opt/crib/bin/crib'), ['--version'])).code).toBe(0);
    expect((await install(d, '--uninstall', '--purge')).code).toBe(1); // the default prefix has no install
    // Uninstalled by its installed copy of the script (no checkout needed), with --purge:
    // nothing at all is left of an install into an empty root.
    const uninstall = await run('bash', [join(d, '/opt/crib/share/crib/install.sh'), '--uninstall', '--purge', '--prefix', '/opt/crib'], { DESTDIR: d });
    expect(uninstall.code).toBe(0);
    expect(readdirSync(d)).toEqual([]);
  });

  it('refuses clearly: not root, not built, bad arguments', async () => {
    // Not root, no DESTDIR: nothing may be written to the real system.
    const asNobody = await run('bash', [INSTALL], { DESTDIR: '' }, { uid: 65534, gid: 65534 });
    expect(asNobody.code).toBe(1);
    expect(asNobody.stderr).toMatch(/run as root .* or set DESTDIR/);
    // A checkout that was never built.
    const bare = join(work, 'bare');
    await mkdir(join(bare, 'deploy'), { recursive: true });
    await cp(INSTALL, join(bare, 'deploy/install.sh'));
    await chmod(join(bare, 'deploy/install.sh'), 0o755);
    const notBuilt = await run('bash', [join(bare, 'deploy/install.sh')], { DESTDIR: join(work, 'never') });
    expect(notBuilt.code).toBe(1);
    expect(notBuilt.stderr).toMatch(/dist\/cli.js is missing: build crib first \(npm ci && npm run build/);
    expect(existsSync(join(work, 'never'))).toBe(false);
    expect((await install(join(work, 'x'), '--prefix', 'relative/dir')).stderr).toMatch(/--prefix must be an absolute path/);
    expect((await install(join(work, 'x'), '--bogus')).stderr).toMatch(/unknown argument --bogus/);
    expect((await install(join(work, 'x'), '--uninstall')).stderr).toMatch(/crib is not installed in .*x\/usr\/local/);
    expect((await install(join(work, 'x'), '--node', '/nonexistent/node')).stderr).toMatch(/--node \/nonexistent\/node is not an executable/);
    expect(existsSync(join(work, 'x'))).toBe(false);
  });
});
