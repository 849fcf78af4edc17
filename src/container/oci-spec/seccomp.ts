// Which seccomp filter a container gets: the CRI SecurityProfile (or the deprecated
// seccomp_profile_path strings), privileged → none. Localhost profiles are files on the node in
// the OCI format or in Docker's format (syscalls[].name, includes/excludes, archMap), which is
// converted for this node's architecture and the container's capabilities.
import { readFile } from 'node:fs/promises';
import { release } from 'node:os';
import { isAbsolute, normalize } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError, errnoCode } from '../../errors.js';
import type { LinuxContainerSecurityContext__Output } from '../../gen/runtime/v1/LinuxContainerSecurityContext.js';
import type { OciSeccomp, OciSeccompArg, OciSeccompSyscall, SeccompAction, SeccompOperator } from './oci-types.js';
import { defaultSeccompProfile, nativeSeccompArch } from './seccomp-default-profile.js';

const ACTIONS: readonly SeccompAction[] = [
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY',
];
const OPERATORS: readonly SeccompOperator[] = [
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ',
];
// Docker profiles name architectures in includes/excludes the Go way.
const GO_ARCH: Record<string, string> = {
  x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64',
};

export type SeccompChoice =
  | { kind: 'unconfined' }
  | { kind: 'runtime-default' }
  | { kind: 'localhost'; path: string };

/** The profile the security context asks for (privileged containers run unconfined). */
export function seccompChoice(sc: LinuxContainerSecurityContext__Output | null | undefined, privileged: boolean): SeccompChoice {
  if (privileged) return { kind: 'unconfined' };
  const profile = sc?.seccomp;
  if (profile) {
    switch (profile.profileType) {
      case 'RuntimeDefault':
        return { kind: 'runtime-default' };
      case 'Unconfined':
        return { kind: 'unconfined' };
      case 'Localhost':
        return { kind: 'localhost', path: localhostPath(profile.localhostRef, 'seccomp.localhostRef') };
      default:
        throw new InvalidArgumentError(`seccomp.profileType ${String(profile.profileType)} is not RuntimeDefault, Unconfined or Localhost`);
    }
  }
  // The deprecated string form, still sent by older kubelets and crictl configs.
  const path = sc?.seccompProfilePath ?? '';
  if (path === '' || path === 'unconfined') return { kind: 'unconfined' };
  if (path === 'runtime/default' || path === 'docker/default') return { kind: 'runtime-default' };
  if (path.startsWith('localhost/')) {
    return { kind: 'localhost', path: localhostPath(path.slice('localhost/'.length), 'seccompProfilePath') };
  }
  throw new InvalidArgumentError(
    `seccompProfilePath "${path}" is not "", "unconfined", "runtime/default", "docker/default" or "localhost/<absolute path>"`,
  );
}

function localhostPath(ref: string, field: string): string {
  if (!isAbsolute(ref) || normalize(ref) !== ref || ref.includes('\0')) {
    throw new InvalidArgumentError(`${field} "${ref}" must be an absolute, clean path to a seccomp profile on the node`);
  }
  return ref;
}

export interface SeccompInput {
  securityContext: LinuxContainerSecurityContext__Output | null | undefined;
  privileged: boolean;
  /** The container's bounding capabilities: they unlock syscalls in the default profile. */
  bounding: readonly string[];
  /** Node `process.arch` naming; the node's own unless testing. */
  arch?: string;
}

export async function containerSeccomp(input: SeccompInput): Promise<OciSeccomp | undefined> {
  const choice = seccompChoice(input.securityContext, input.privileged);
  switch (choice.kind) {
    case 'unconfined':
      return undefined;
    case 'runtime-default':
      return defaultSeccompProfile(input.bounding, input.arch);
    case 'localhost':
      return loadSeccompProfile(choice.path, input.bounding, input.arch);
  }
}

export async function loadSeccompProfile(path: string, bounding: readonly string[], arch: string = process.arch): Promise<OciSeccomp> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new FailedPreconditionError(
      `seccomp profile ${path} cannot be read: ${errnoCode(err) ?? (err as Error).message}`,
      { cause: err },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`seccomp profile ${path} is not valid JSON: ${(err as Error).message}`);
  }
  return convertSeccompProfile(json, path, bounding, arch);
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] | undefined =>
  Array.isArray(v) && v.every((s) => typeof s === 'string') ? (v as string[]) : undefined;

function kernelAtLeast(min: string, current: string): boolean {
  const parse = (v: string): number[] => (v.match(/^(\d+)\.(\d+)/) ?? ['', '0', '0']).slice(1).map(Number);
  const [a, b] = parse(min);
  const [c, d] = parse(current);
  return c! > a! || (c === a && d! >= b!);
}

/** An OCI or Docker-format profile → the OCI form for this node, validated; errors name `name`. */
export function convertSeccompProfile(
  json: unknown,
  name: string,
  bounding: readonly string[],
  arch: string = process.arch,
  kernel: string = release(),
): OciSeccomp {
  const bad = (what: string): never => {
    throw new InvalidArgumentError(`seccomp profile ${name}: ${what}`);
  };
  if (!isObject(json)) return bad('top level is not a JSON object');
  const action = (v: unknown, where: string): SeccompAction =>
    ACTIONS.includes(v as SeccompAction) ? (v as SeccompAction) : bad(`${where}: unknown action ${JSON.stringify(v)}`);
  const errno = (v: unknown, where: string): number | undefined =>
    v === undefined || v === null ? undefined : Number.isInteger(v) && (v as number) >= 0 ? (v as number) : bad(`${where}: errnoRet must be a non-negative integer`);

  const out: OciSeccomp = { defaultAction: action(json.defaultAction, 'defaultAction') };
  const defaultErrno = errno(json.defaultErrnoRet, 'defaultErrnoRet');
  if (defaultErrno !== undefined) out.defaultErrnoRet = defaultErrno;

  if (Array.isArray(json.archMap) && json.archMap.length > 0) {
    // Docker's archMap: keep the entry for this node's native architecture.
    const native = nativeSeccompArch(arch);
    const entry = json.archMap.find((e) => isObject(e) && e.architecture === native);
    if (isObject(entry)) out.architectures = [entry.architecture as string, ...(strings(entry.subArchitectures) ?? [])];
  } else if (json.architectures !== undefined && json.architectures !== null) {
    out.architectures = strings(json.architectures) ?? bad('architectures must be a list of strings');
  }
  if (json.flags !== undefined && json.flags !== null) out.flags = strings(json.flags) ?? bad('flags must be a list of strings');
  if (typeof json.listenerPath === 'string' && json.listenerPath !== '') out.listenerPath = json.listenerPath;
  if (typeof json.listenerMetadata === 'string' && json.listenerMetadata !== '') out.listenerMetadata = json.listenerMetadata;

  const goArch = GO_ARCH[arch] ?? arch;
  const syscalls: OciSeccompSyscall[] = [];
  const list = json.syscalls ?? [];
  if (!Array.isArray(list)) bad('syscalls must be a list');
  (list as unknown[]).forEach((raw, i) => {
    const where = `syscalls[${i}]`;
    if (!isObject(raw)) return bad(`${where} is not an object`);
    const inc = isObject(raw.includes) ? raw.includes : {};
    const exc = isObject(raw.excludes) ? raw.excludes : {};
    const incArches = strings(inc.arches) ?? [];
    const incCaps = strings(inc.caps) ?? [];
    if (incArches.length > 0 && !incArches.includes(goArch)) return;
    if (incCaps.length > 0 && !incCaps.every((c) => bounding.includes(c))) return;
    if (typeof inc.minKernel === 'string' && inc.minKernel !== '' && !kernelAtLeast(inc.minKernel, kernel)) return;
    if ((strings(exc.arches) ?? []).includes(goArch)) return;
    if ((strings(exc.caps) ?? []).some((c) => bounding.includes(c))) return;

    const names = strings(raw.names) ?? (typeof raw.name === 'string' ? [raw.name] : undefined);
    if (!names || names.length === 0 || names.some((n) => n === '')) return bad(`${where}: needs "names" (or Docker's "name")`);
    const rule: OciSeccompSyscall = { names, action: action(raw.action, `${where}.action`) };
    const e = errno(raw.errnoRet, `${where}.errnoRet`);
    if (e !== undefined) rule.errnoRet = e;
    if (raw.args !== undefined && raw.args !== null) {
      if (!Array.isArray(raw.args)) return bad(`${where}.args must be a list`);
      rule.args = raw.args.map((a, j): OciSeccompArg => {
        const at = `${where}.args[${j}]`;
        if (!isObject(a)) return bad(`${at} is not an object`);
        const index = Number.isInteger(a.index) && (a.index as number) >= 0 && (a.index as number) < 6 ? (a.index as number) : bad(`${at}.index must be 0..5`);
        const value = Number.isInteger(a.value) && (a.value as number) >= 0 ? (a.value as number) : bad(`${at}.value must be a non-negative integer`);
        const op = OPERATORS.includes(a.op as SeccompOperator) ? (a.op as SeccompOperator) : bad(`${at}: unknown op ${JSON.stringify(a.op)}`);
        const arg: OciSeccompArg = { index, value, op };
        if (a.valueTwo !== undefined && a.valueTwo !== null) {
          arg.valueTwo = Number.isInteger(a.valueTwo) && (a.valueTwo as number) >= 0 ? (a.valueTwo as number) : bad(`${at}.valueTwo must be a non-negative integer`);
        }
        return arg;
      });
    }
    syscalls.push(rule);
  });
  out.syscalls = syscalls;
  return out;
}
