// Image references as kubelet and crictl spell them ("busybox", "user/app:1.2",
// "127.0.0.1:5000/team/app@sha256:…"), normalised the way Docker and containerd do so that the
// same image always gets the same name in our store: a bare first component is a Docker Hub
// repository, Hub's official images live under "library/", and a reference with neither tag nor
// digest means ":latest".
import { InvalidArgumentError } from '../errors.js';

export const DOCKER_HUB = 'docker.io';
const LEGACY_HUB = 'index.docker.io';
const DEFAULT_TAG = 'latest';
const MAX_NAME_LENGTH = 255;

// The grammar of github.com/distribution/reference, written out piece by piece.
const NAME_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_LABEL = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const PORT = /^[0-9]+$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const ANY_DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const IMAGE_ID = /^[a-f0-9]{64}$/;

export interface ImageReference {
  /** Registry host, with port when one was given: "docker.io", "127.0.0.1:5000". */
  readonly domain: string;
  /** Repository path inside the registry: "library/busybox". */
  readonly path: string;
  readonly tag?: string;
  /** "sha256:<64 hex>" */
  readonly digest?: string;
  /** domain/path */
  readonly name: string;
  /** The short form Docker prints: "busybox:latest", "user/x:1", "127.0.0.1:5000/a:b". */
  readonly familiar: string;
  /** Canonical form: name[:tag][@digest]. */
  toString(): string;
}

class Reference implements ImageReference {
  readonly name: string;
  constructor(
    readonly domain: string,
    readonly path: string,
    readonly tag: string | undefined,
    readonly digest: string | undefined,
  ) {
    this.name = `${domain}/${path}`;
  }

  get familiar(): string {
    let short = this.name;
    if (this.domain === DOCKER_HUB) {
      short = this.path.startsWith('library/') && this.path.split('/').length === 2
        ? this.path.slice('library/'.length)
        : this.path;
    }
    return short + suffix(this.tag, this.digest);
  }

  toString(): string {
    return this.name + suffix(this.tag, this.digest);
  }
}

function suffix(tag: string | undefined, digest: string | undefined): string {
  return (tag !== undefined ? `:${tag}` : '') + (digest !== undefined ? `@${digest}` : '');
}

function invalid(input: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid image reference "${input}": ${why}`);
}

/**
 * Parse and normalise an image reference. Throws InvalidArgumentError naming the reference and
 * the part that is wrong.
 */
export function parseReference(input: string): ImageReference {
  if (typeof input !== 'string' || input.length === 0) {
    throw new InvalidArgumentError('invalid image reference "": the reference is empty');
  }
  if (input.trim() !== input) throw invalid(input, 'it has leading or trailing whitespace');
  if (IMAGE_ID.test(input)) {
    throw invalid(input, 'a 64-character hexadecimal string is an image ID, not a repository name');
  }

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!ANY_DIGEST.test(digest)) throw invalid(input, `"${digest}" is not a digest like sha256:<64 hex digits>`);
    if (!digest.startsWith('sha256:')) {
      throw invalid(input, `digest algorithm "${digest.split(':')[0]}" is not supported (only sha256)`);
    }
    if (!DIGEST.test(digest)) throw invalid(input, `"${digest}" is not a sha256 digest of 64 lowercase hex digits`);
  }

  // The tag is after the last ':' that follows the last '/' (a ':' before it is a port).
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.indexOf(':', lastSlash + 1);
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      throw invalid(input, `tag "${tag}" must be 1-128 characters of letters, digits, '_', '.' or '-', not starting with '.' or '-'`);
    }
  }
  if (rest.length === 0) throw invalid(input, 'the repository name is empty');

  let domain = DOCKER_HUB;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    // Docker's rule: the first component is a registry when it looks like a host.
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[') || first !== first.toLowerCase()) {
      domain = first;
      path = rest.slice(slash + 1);
      checkDomain(input, domain);
    }
  }
  if (domain === LEGACY_HUB) domain = DOCKER_HUB;
  if (domain === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;

  for (const component of path.split('/')) {
    if (component.length === 0) throw invalid(input, 'the repository path has an empty component');
    if (!NAME_COMPONENT.test(component)) {
      const why = component !== component.toLowerCase()
        ? 'repository names must be lowercase'
        : "components may only hold lowercase letters, digits and single separators '.', '_', '__' or '-'";
      throw invalid(input, `repository component "${component}" is malformed: ${why}`);
    }
  }
  const name = `${domain}/${path}`;
  if (name.length > MAX_NAME_LENGTH) throw invalid(input, `the repository name is longer than ${MAX_NAME_LENGTH} characters`);

  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  return new Reference(domain, path, tag, digest);
}

function checkDomain(input: string, domain: string): void {
  let host = domain;
  let port: string | undefined;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) throw invalid(input, `registry host "${domain}" has an unclosed '['`);
    const inner = host.slice(1, end);
    if (!/^[0-9a-fA-F:.]+$/.test(inner) || !inner.includes(':')) throw invalid(input, `registry host "${domain}" is not an IPv6 address`);
    const after = host.slice(end + 1);
    if (after !== '') {
      if (!after.startsWith(':')) throw invalid(input, `registry host "${domain}" has text after ']'`);
      port = after.slice(1);
    }
  } else {
    const c = host.indexOf(':');
    if (c >= 0) {
      port = host.slice(c + 1);
      host = host.slice(0, c);
    }
    if (host.length === 0) throw invalid(input, `registry host "${domain}" has no host name`);
    for (const label of host.split('.')) {
      if (!DOMAIN_LABEL.test(label)) throw invalid(input, `registry host "${domain}" is not a valid host name`);
    }
  }
  if (port !== undefined && (!PORT.test(port) || Number(port) < 1 || Number(port) > 65535)) {
    throw invalid(input, `registry port "${port}" is not a number from 1 to 65535`);
  }
}

/** The host part of a "host[:port]" domain, without brackets for IPv6. */
export function hostOf(domain: string): string {
  if (domain.startsWith('[')) return domain.slice(1, domain.indexOf(']'));
  const c = domain.indexOf(':');
  return c >= 0 ? domain.slice(0, c) : domain;
}

/**
 * Whether a registry domain is this machine: such registries may be spoken to over plain http
 * without configuration, as Docker allows for 127.0.0.0/8 and localhost.
 */
export function isLoopbackHost(domain: string): boolean {
  const host = hostOf(domain).toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (host === '::1' || host === '0:0:0:0:0:0:0:1') return true;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (v4 && v4.slice(1).every((o) => Number(o) <= 255)) return v4[1] === '127';
  const mapped = /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/i.exec(host);
  return mapped !== null;
}
