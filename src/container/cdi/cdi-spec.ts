// One CDI spec file (JSON or YAML) parsed and checked against the CDI specification: a known
// cdiVersion, no unknown fields, valid kind and device names, no device twice, and no field
// newer than the version the file declares (a vendor tool writing "0.3.0" with 0.7.0 fields is
// broken, and the CDI reference library refuses it the same way).
import { z } from 'zod';
import { deviceNameProblem, kindProblem } from './cdi-names.js';
import { lazyModule } from '../../sys/lazy-module.js';

/** Loaded with the first YAML spec (sys/lazy-module.ts): most nodes have none. */
const yaml = lazyModule<typeof import('yaml')>('yaml');

/** The spec versions the CDI project has released. */
export const CDI_VERSIONS = ['0.3.0', '0.4.0', '0.5.0', '0.6.0', '0.7.0', '0.8.0', '1.0.0', '1.1.0'] as const;

/** Bounds on what a spec file may make the daemon hold (vendor files are a few KiB). */
export const CDI_LIMITS = { maxDevicesPerSpec: 1024, maxEditsPerList: 1024 } as const;

const HOOK_NAMES = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
export type CdiHookName = (typeof HOOK_NAMES)[number];

// Built for each parse and dropped after it, not held in module constants: zod binds some 25
// methods to every schema node, and most nodes have no CDI spec at all to parse (issue 14).
function cdiSpecSchema() {
  const list = <T extends z.ZodTypeAny>(item: T) => z.array(item).max(CDI_LIMITS.maxEditsPerList);
  const absolute = z.string().min(1).max(4096).refine((p) => p.startsWith('/'), 'must be an absolute path');
  const uint32 = z.number().int().min(0).max(0xffffffff);

  const deviceNode = z
    .object({
      path: absolute,
      hostPath: absolute.optional(),
      type: z.enum(['b', 'c', 'u', 'p']).optional(),
      major: z.number().int().min(0).max(0xfffff).optional(),
      minor: z.number().int().min(0).max(0xfffff).optional(),
      fileMode: z.number().int().min(0).max(0o7777).optional(),
      permissions: z.string().refine((p) => p === '' || p === 'none' || (/^[rwm]{1,3}$/.test(p) && new Set(p).size === p.length), 'must be a combination of r, w and m, or "none"').optional(),
      uid: uint32.optional(),
      gid: uint32.optional(),
    })
    .strict();

  const mount = z
    .object({
      hostPath: z.string().min(1).max(4096),
      containerPath: absolute,
      type: z.string().max(64).optional(),
      options: list(z.string().max(256)).optional(),
    })
    .strict();

  const hook = z
    .object({
      hookName: z.enum(HOOK_NAMES),
      path: absolute,
      args: list(z.string().max(65536)).optional(),
      env: list(z.string().max(65536)).optional(),
      timeout: z.number().int().min(1).max(86400).optional(),
    })
    .strict();

  const envEntry = z.string().max(65536).refine((e) => /^[^=]+=/.test(e), 'must be NAME=value');

  const containerEdits = z
    .object({
      env: list(envEntry).optional(),
      deviceNodes: list(deviceNode).optional(),
      mounts: list(mount).optional(),
      hooks: list(hook).optional(),
      additionalGids: list(uint32).optional(),
      // Parsed so a spec using them loads (its other devices stay usable); a device asking for
      // them is refused at resolution, crib having neither resctrl nor interface moves.
      intelRdt: z.record(z.unknown()).optional(),
      netDevices: list(z.object({ hostInterfaceName: z.string(), name: z.string() }).strict()).optional(),
    })
    .strict();

  const annotations = z.record(z.string().max(65536)).optional();

  const device = z
    .object({
      name: z.string(),
      annotations,
      containerEdits: containerEdits.default({}),
    })
    .strict();

  return z
    .object({
      cdiVersion: z.string(),
      kind: z.string(),
      annotations,
      devices: z.array(device).min(1, 'a spec must define at least one device').max(CDI_LIMITS.maxDevicesPerSpec),
      containerEdits: containerEdits.optional(),
    })
    .strict();
}

export type CdiSpec = z.output<ReturnType<typeof cdiSpecSchema>>;
export type CdiContainerEdits = CdiSpec['devices'][number]['containerEdits'];
export type CdiDeviceNode = NonNullable<CdiContainerEdits['deviceNodes']>[number];

function versionNumber(v: string): number {
  const [maj, min, patch] = v.split('.').map(Number);
  return maj! * 1_000_000 + min! * 1000 + patch!;
}

const usesAny = (edits: CdiContainerEdits[], pick: (e: CdiContainerEdits) => boolean): boolean => edits.some(pick);

/** The lowest CDI version whose schema has every field `spec` uses. */
export function minimumVersion(spec: CdiSpec): string {
  const edits = [...(spec.containerEdits ? [spec.containerEdits] : []), ...spec.devices.map((d) => d.containerEdits)];
  if (usesAny(edits, (e) => e.netDevices !== undefined)) return '1.1.0';
  if (usesAny(edits, (e) => e.intelRdt !== undefined || e.additionalGids !== undefined)) return '0.7.0';
  const cls = spec.kind.slice(spec.kind.indexOf('/') + 1);
  if (spec.annotations !== undefined || spec.devices.some((d) => d.annotations !== undefined) || cls.includes('.')) return '0.6.0';
  if (usesAny(edits, (e) => (e.deviceNodes ?? []).some((n) => n.hostPath !== undefined)) || spec.devices.some((d) => /^[0-9]/.test(d.name))) return '0.5.0';
  if (usesAny(edits, (e) => (e.mounts ?? []).some((m) => m.type !== undefined))) return '0.4.0';
  return '0.3.0';
}

/** Parses and checks one spec file's text; throws an Error whose message says what is wrong. */
export function parseCdiSpec(text: string, format: 'json' | 'yaml'): CdiSpec {
  let raw: unknown;
  try {
    // maxAliasCount bounds YAML alias expansion ("billion laughs").
    raw = format === 'json' ? JSON.parse(text) : yaml().parse(text, { maxAliasCount: 100, uniqueKeys: true });
  } catch (err) {
    throw new Error(`not valid ${format.toUpperCase()}: ${(err as Error).message}`);
  }
  const parsed = cdiSpecSchema().safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.join('.') || '(top level)';
    const what = issue.code === z.ZodIssueCode.unrecognized_keys ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}` : issue.message;
    throw new Error(`${where}: ${what}`);
  }
  const spec = parsed.data;
  if (!(CDI_VERSIONS as readonly string[]).includes(spec.cdiVersion)) {
    throw new Error(`cdiVersion "${spec.cdiVersion}" is not a CDI version crib knows (${CDI_VERSIONS.join(', ')})`);
  }
  const kp = kindProblem(spec.kind);
  if (kp) throw new Error(kp);
  const seen = new Set<string>();
  for (const d of spec.devices) {
    const np = deviceNameProblem(d.name);
    if (np) throw new Error(np);
    if (seen.has(d.name)) throw new Error(`device "${d.name}" is defined twice`);
    seen.add(d.name);
  }
  const needed = minimumVersion(spec);
  if (versionNumber(needed) > versionNumber(spec.cdiVersion)) {
    throw new Error(`uses fields of CDI ${needed} but declares cdiVersion "${spec.cdiVersion}"`);
  }
  return spec;
}
