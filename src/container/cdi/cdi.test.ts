import { chmodSync, mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configFromObject } from '../../config/config.js';
import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import type { OciSpec } from '../oci-spec/oci-types.js';
import { applyCdiDevices } from './cdi-edits.js';
import { parseQualifiedName } from './cdi-names.js';
import { CdiRegistry, MAX_SPEC_FILE_BYTES } from './cdi-registry.js';
import { requestedCdiDevices } from './cdi-requests.js';
import { minimumVersion, parseCdiSpec } from './cdi-spec.js';

const vendorSpec = (o: Record<string, unknown> = {}) => ({
  cdiVersion: '0.6.0',
  kind: 'vendor.example/nulldev',
  devices: [
    { name: 'dev0', containerEdits: { deviceNodes: [{ path: '/dev/vendor0', hostPath: '/dev/null' }], env: ['VENDOR_DEV=dev0'] } },
    { name: 'dev1', containerEdits: { env: ['VENDOR_DEV=dev1'] } },
  ],
  containerEdits: { env: ['VENDOR_LIB=1'], mounts: [{ hostPath: '/etc/hostname', containerPath: '/opt/vendor/hostname', options: ['ro'] }] },
  ...o,
});

describe('CDI names', () => {
  it('splits fully-qualified names and refuses malformed ones, naming them', () => {
    expect(parseQualifiedName('vendor.com/gpu=0')).toEqual({ kind: 'vendor.com/gpu', name: '0' });
    expect(parseQualifiedName('nvidia.com/gpu=GPU-1a:2')).toEqual({ kind: 'nvidia.com/gpu', name: 'GPU-1a:2' });
    for (const bad of ['vendor.com/gpu', 'gpu=0', 'vendor.com/gpu/x=0', 'vendor.com/gpu=', 'vendor.com/=0', '-v.com/gpu=0', 'vendor.com/gpu=-x']) {
      expect(() => parseQualifiedName(bad), bad).toThrow(`"${bad}" is not a fully-qualified CDI device name`);
    }
  });

  it('gathers CDI_devices then cdi.k8s.io/ annotations (comma lists), ignoring other annotations', () => {
    expect(requestedCdiDevices({
      CDIDevices: [{ name: 'a.com/x=1' }],
      annotations: { 'cdi.k8s.io/b': 'b.com/y=2, b.com/y=3', 'cdi.k8s.io/a': 'c.com/z=4', 'other.io/cdi': 'd.com/w=5' },
    })).toEqual(['a.com/x=1', 'c.com/z=4', 'b.com/y=2', 'b.com/y=3']);
  });
});

describe('CDI spec parsing', () => {
  it('reads JSON and YAML forms of the same spec alike', () => {
    const fromJson = parseCdiSpec(JSON.stringify(vendorSpec()), 'json');
    const yaml = [
      'cdiVersion: "0.6.0"',
      'kind: vendor.example/nulldev',
      'devices:',
      '  - name: dev0',
      '    containerEdits:',
      '      deviceNodes: [{path: /dev/vendor0, hostPath: /dev/null}]',
      '      env: [VENDOR_DEV=dev0]',
      '  - name: dev1',
      '    containerEdits: {env: [VENDOR_DEV=dev1]}',
      'containerEdits:',
      '  env: [VENDOR_LIB=1]',
      '  mounts:',
      '    - {hostPath: /etc/hostname, containerPath: /opt/vendor/hostname, options: [ro]}',
    ].join('\n');
    expect(parseCdiSpec(yaml, 'yaml')).toEqual(fromJson);
  });

  it('accepts every released version and the fields each one brought', () => {
    for (const v of ['0.3.0', '0.4.0', '0.5.0', '0.6.0', '0.7.0', '0.8.0', '1.0.0', '1.1.0']) {
      expect(parseCdiSpec(JSON.stringify({ cdiVersion: v, kind: 'v.com/c', devices: [{ name: 'd', containerEdits: {} }] }), 'json').cdiVersion).toBe(v);
    }
    const gids = vendorSpec({ cdiVersion: '0.7.0', containerEdits: { additionalGids: [44] } });
    expect(minimumVersion(parseCdiSpec(JSON.stringify(gids), 'json'))).toBe('0.7.0');
  });

  const broken: [string, string, 'json' | 'yaml', RegExp][] = [
    ['bad JSON', '{"cdiVersion": ', 'json', /not valid JSON/],
    ['bad YAML', 'cdiVersion: [', 'yaml', /not valid YAML/],
    ['unknown version', JSON.stringify(vendorSpec({ cdiVersion: '9.9.9' })), 'json', /cdiVersion "9.9.9" is not a CDI version crib knows/],
    ['unknown field', JSON.stringify(vendorSpec({ extra: 1 })), 'json', /unknown field "extra"/],
    ['no devices', JSON.stringify(vendorSpec({ devices: [] })), 'json', /at least one device/],
    ['bad kind', JSON.stringify(vendorSpec({ kind: 'nulldev' })), 'json', /kind "nulldev" must be "vendor\/class"/],
    ['device twice', JSON.stringify(vendorSpec({ devices: [{ name: 'a' }, { name: 'a' }] })), 'json', /device "a" is defined twice/],
    ['field newer than the version', JSON.stringify(vendorSpec({ cdiVersion: '0.4.0' })), 'json', /uses fields of CDI 0.5.0 but declares cdiVersion "0.4.0"/],
    ['relative device path', JSON.stringify(vendorSpec({ devices: [{ name: 'a', containerEdits: { deviceNodes: [{ path: 'dev/x' }] } }] })), 'json', /devices.0.containerEdits.deviceNodes.0.path: must be an absolute path/],
    ['bad permissions', JSON.stringify(vendorSpec({ devices: [{ name: 'a', containerEdits: { deviceNodes: [{ path: '/dev/x', permissions: 'rx' }] } }] })), 'json', /permissions: must be a combination of r, w and m/],
    ['unknown hook', JSON.stringify(vendorSpec({ devices: [{ name: 'a', containerEdits: { hooks: [{ hookName: 'later', path: '/bin/true' }] } }] })), 'json', /hookName/],
  ];
  for (const [name, text, format, msg] of broken) {
    it(`refuses a spec: ${name}`, () => {
      expect(() => parseCdiSpec(text, format)).toThrow(msg);
    });
  }

  it('bounds YAML alias expansion', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`)].join('\n');
    expect(() => parseCdiSpec(bomb, 'yaml')).toThrow(/not valid YAML/);
  });
});

describe('CdiRegistry', () => {
  let dir: string;
  let etc: string;
  let run: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'crib-cdi-'));
    etc = join(dir, 'etc');
    run = join(dir, 'run');
    // Explicit modes: under a umask of 002 the defaults would be group-writable, which the registry refuses.
    mkdirSync(etc, { mode: 0o755 });
    mkdirSync(run, { mode: 0o755 });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (d: string, name: string, spec: unknown) => writeFileSync(join(d, name), typeof spec === 'string' ? spec : JSON.stringify(spec), { mode: 0o644 });

  it('resolves devices with their spec edits once per spec, in request order', async () => {
    write(etc, 'vendor.json', vendorSpec());
    const got = await new CdiRegistry([etc, run]).resolve(['vendor.example/nulldev=dev1', 'vendor.example/nulldev=dev0', 'vendor.example/nulldev=dev1']);
    expect(got.map((d) => d.name)).toEqual(['vendor.example/nulldev=dev1', 'vendor.example/nulldev=dev0']);
    expect(got[0]!.specEdits?.env).toEqual(['VENDOR_LIB=1']);
    expect(got[1]!.specEdits).toBeUndefined();
    expect(got[1]!.specPath).toBe(join(etc, 'vendor.json'));
  });

  it('lets a later directory override an earlier one', async () => {
    write(etc, 'vendor.json', vendorSpec());
    write(run, 'vendor.yaml', `cdiVersion: "0.3.0"\nkind: vendor.example/nulldev\ndevices:\n  - name: dev1\n    containerEdits: {env: [FROM=run]}\n`);
    const reg = new CdiRegistry([etc, run]);
    const [dev1] = await reg.resolve(['vendor.example/nulldev=dev1']);
    expect(dev1!.edits.env).toEqual(['FROM=run']);
    expect(dev1!.specPath).toBe(join(run, 'vendor.yaml'));
    // The overridden spec's other devices stay reachable.
    expect((await reg.resolve(['vendor.example/nulldev=dev0']))[0]!.specPath).toBe(join(etc, 'vendor.json'));
  });

  it('refuses a device two files of one directory define', async () => {
    write(etc, 'a.json', vendorSpec());
    write(etc, 'b.json', vendorSpec());
    await expect(new CdiRegistry([etc]).resolve(['vendor.example/nulldev=dev0'])).rejects.toThrow(/defined by several specs of one directory .*a\.json.*b\.json/);
  });

  it('keeps the devices of good files when a sibling is broken, and names the broken one when a device is missing', async () => {
    write(etc, 'vendor.json', vendorSpec());
    write(etc, 'broken.json', '{"cdiVersion": "0.6.0", "kind": "other.example/x", "devices": [');
    symlinkSync(join(etc, 'vendor.json'), join(etc, 'link.json'));
    write(etc, 'notes.txt', 'not a spec');
    const reg = new CdiRegistry([etc, run]);
    expect(await reg.resolve(['vendor.example/nulldev=dev0'])).toHaveLength(1);
    const err = reg.resolveFor({ CDIDevices: [{ name: 'other.example/x=gpu' }], annotations: {} });
    await expect(err).rejects.toBeInstanceOf(NotFoundError);
    await expect(err).rejects.toThrow(/CDI device "other.example\/x=gpu" is not defined by any spec in .*; spec files that could not be read: .*broken\.json \(not valid JSON.*link\.json \(not a regular file/);
  });

  it('answers INVALID_ARGUMENT for a malformed name and for edits crib cannot apply', async () => {
    write(etc, 'rdt.json', { cdiVersion: '0.7.0', kind: 'rdt.example/c', devices: [{ name: 'd', containerEdits: { intelRdt: { closID: 'x' } } }] });
    const reg = new CdiRegistry([etc]);
    await expect(reg.resolveFor({ CDIDevices: [{ name: 'nonsense' }], annotations: {} })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(reg.resolveFor({ CDIDevices: [], annotations: { 'cdi.k8s.io/x': 'rdt.example/c=d' } })).rejects.toThrow(/needs intelRdt edits, which crib cannot apply/);
  });

  it('re-reads a directory when its files change', async () => {
    const reg = new CdiRegistry([etc, run]);
    await expect(reg.resolve(['vendor.example/nulldev=dev0'])).rejects.toThrow(/not defined by any spec/);
    write(run, 'vendor.json', vendorSpec());
    expect(await reg.resolve(['vendor.example/nulldev=dev0'])).toHaveLength(1);
    write(run, 'vendor.json', vendorSpec({ devices: [{ name: 'dev0', containerEdits: { env: ['CHANGED=yes, longer'] } }] }));
    expect((await reg.resolve(['vendor.example/nulldev=dev0']))[0]!.edits.env).toEqual(['CHANGED=yes, longer']);
    rmSync(join(run, 'vendor.json'));
    await expect(reg.resolve(['vendor.example/nulldev=dev0'])).rejects.toThrow(/not defined by any spec/);
  });

  it('refuses a spec file or directory others could have written', async () => {
    write(etc, 'vendor.json', vendorSpec());
    chmodSync(join(etc, 'vendor.json'), 0o666);
    const reg = new CdiRegistry([etc]);
    await expect(reg.resolve(['vendor.example/nulldev=dev0'])).rejects.toThrow(/vendor\.json \(writable by group \(mode 666\): a spec only root may write is trusted\)/);
    chmodSync(join(etc, 'vendor.json'), 0o644);
    expect(await reg.resolve(['vendor.example/nulldev=dev0'])).toHaveLength(1);
    chmodSync(etc, 0o777);
    await expect(reg.resolve(['vendor.example/nulldev=dev0'])).rejects.toThrow(/not defined by any spec/);
    chmodSync(etc, 0o755);
  });

  it('refuses an oversized spec file without reading it', async () => {
    writeFileSync(join(etc, 'huge.json'), Buffer.alloc(MAX_SPEC_FILE_BYTES + 1, 0x20), { mode: 0o644 });
    await expect(new CdiRegistry([etc]).resolve(['a.com/b=c'])).rejects.toThrow(/huge\.json \(\d+ bytes, more than the \d+ a CDI spec may have\)/);
  });
});

describe('applyCdiDevices', () => {
  const baseSpec = (): OciSpec => ({
    ociVersion: '1.1.0',
    process: { user: { uid: 1000, gid: 1000 }, args: ['sh'], env: ['PATH=/bin', 'VENDOR_DEV=old'], cwd: '/', capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] } },
    root: { path: '/rootfs' },
    mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }, { destination: '/opt/vendor/hostname/x', type: 'tmpfs', source: 'tmpfs' }],
    linux: { namespaces: [], resources: { devices: [{ allow: false, access: 'rwm' }] } },
  });

  it('adds device nodes from the host node, cgroup rules, env, mounts, hooks and GIDs', async () => {
    const spec = baseSpec();
    await applyCdiDevices(spec, [{
      name: 'vendor.example/nulldev=dev0',
      specPath: '/etc/cdi/vendor.json',
      specEdits: { env: ['VENDOR_LIB=1'], mounts: [{ hostPath: '/etc/hostname', containerPath: '/opt/vendor/hostname', options: ['ro'] }], additionalGids: [0, 44] },
      edits: {
        env: ['VENDOR_DEV=dev0'],
        deviceNodes: [
          { path: '/dev/vendor0', hostPath: '/dev/null', permissions: 'rw' },
          { path: '/dev/vendor-fixed', type: 'c', major: 239, minor: 7 },
          { path: '/dev/vendor-ro', hostPath: '/dev/null', permissions: 'r' },
        ],
        hooks: [{ hookName: 'createContainer', path: '/usr/bin/vendor-hook', args: ['vendor-hook', 'x'], timeout: 5 }],
      },
    }]);
    expect(spec.process.env).toEqual(['PATH=/bin', 'VENDOR_DEV=dev0', 'VENDOR_LIB=1']);
    expect(spec.linux.devices).toEqual([
      { type: 'c', path: '/dev/vendor0', major: 1, minor: 3, fileMode: 0o666, uid: 1000, gid: 1000 },
      { type: 'c', path: '/dev/vendor-fixed', major: 239, minor: 7, uid: 1000, gid: 1000 },
      // Read access only: the host mode loses its write bits.
      { type: 'c', path: '/dev/vendor-ro', major: 1, minor: 3, fileMode: 0o444, uid: 1000, gid: 1000 },
    ]);
    expect(spec.linux.resources.devices.slice(1)).toEqual([
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' },
      { allow: true, type: 'c', major: 239, minor: 7, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'r' },
    ]);
    // The parent mount comes before the one under it.
    expect(spec.mounts.map((m) => m.destination)).toEqual(['/proc', '/opt/vendor/hostname', '/opt/vendor/hostname/x']);
    expect(spec.mounts[1]).toEqual({ destination: '/opt/vendor/hostname', type: 'bind', source: '/etc/hostname', options: ['rbind', 'ro'] });
    expect(spec.hooks).toEqual({ createContainer: [{ path: '/usr/bin/vendor-hook', args: ['vendor-hook', 'x'], timeout: 5 }] });
    expect(spec.process.user.additionalGids).toEqual([44]);
  });

  it('fails naming the device when its host node is missing or of another type', async () => {
    await expect(applyCdiDevices(baseSpec(), [{ name: 'v.com/c=d', specPath: '/s.json', edits: { deviceNodes: [{ path: '/dev/crib-no-such-device' }] } }]))
      .rejects.toThrow(/CDI device "v.com\/c=d" \(\/s.json\).deviceNodes\[0\] \(\/dev\/crib-no-such-device\): host device \/dev\/crib-no-such-device: ENOENT/);
    await expect(applyCdiDevices(baseSpec(), [{ name: 'v.com/c=d', specPath: '/s.json', edits: { deviceNodes: [{ path: '/dev/x', hostPath: '/dev/null', type: 'b' }] } }]))
      .rejects.toThrow(/type "b" but host device \/dev\/null is of type "c"/);
  });
});

describe('[cdi] config', () => {
  it('defaults to /etc/cdi then /var/run/cdi and refuses relative directories', () => {
    expect(configFromObject({}).cdi.spec_dirs).toEqual(['/etc/cdi', '/var/run/cdi']);
    expect(configFromObject({ cdi: { spec_dirs: ['/opt/cdi'] } }).cdi.spec_dirs).toEqual(['/opt/cdi']);
    expect(() => configFromObject({ cdi: { spec_dirs: ['cdi'] } })).toThrow(/cdi.spec_dirs.0: must be an absolute path/);
    expect(() => configFromObject({ cdi: { dirs: [] } })).toThrow(/unknown key "cdi.dirs"/);
  });
});
