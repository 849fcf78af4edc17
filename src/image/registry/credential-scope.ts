// Where credentials may go. A PullImage's AuthConfig belongs to one registry: the one its
// server_address names, else the registry of the image being pulled. It is sent to that
// registry's own endpoint and nowhere else: never to a mirror (a mirror is another party, even
// when it serves the same images; it gets only the credentials the config file gives its own
// host), never to another registry. And no credential, from the request or the config, crosses
// the network in clear text: plain http carries one only to loopback or to a host the operator
// marked `insecure`.
import { hostOf, isLoopbackHost } from '../reference.js';
import { hostOptions, type ResolvedHostsConfig } from './hosts.js';

// Docker Hub answers under several names; `docker login` records "https://index.docker.io/v1/".
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/**
 * The registry a host or server address names, in the one spelling we compare: lower case,
 * host[:port], Docker Hub's aliases folded to "docker.io", a default port dropped. Accepts what
 * kubelet passes as server_address: "https://index.docker.io/v1/", "registry.example:5000",
 * "http://10.0.0.5:5000/". Undefined when it names no host.
 */
export function canonicalRegistry(address: string): string | undefined {
  const text = address.trim();
  if (text === '') return undefined;
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return undefined;
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.hostname === '' || url.username || url.password) return undefined;
  // URL drops the scheme's default port (https://x:443 → x); an http address on port 443 is
  // not the same registry as https on 443, but nobody runs that and the host still matches.
  const host = url.host.toLowerCase();
  // A glob ("*.example.com", as docker config keys may be) names no one registry.
  if (!/^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d+)?$/.test(host)) return undefined;
  return DOCKER_HUB_ALIASES.has(host) ? 'docker.io' : host;
}

/**
 * The registry a PullImage AuthConfig belongs to: its server_address when set, else the image's
 * registry. Undefined when server_address is set but names no host: such credentials belong
 * nowhere and are sent nowhere.
 */
export function credentialOwner(serverAddress: string | undefined, imageDomain: string): string | undefined {
  return serverAddress ? canonicalRegistry(serverAddress) : canonicalRegistry(imageDomain);
}

/** Whether plain http to `host` is allowed: loopback, or a host the operator marked insecure. */
export function plainHttpAllowed(config: ResolvedHostsConfig, host: string): boolean {
  return isLoopbackHost(host) || (hostOptions(config, host)?.insecure ?? false);
}

/** Whether a credential may be sent to `url`: https, or plain http that plainHttpAllowed. */
export function mayCarryCredentials(config: ResolvedHostsConfig, url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && plainHttpAllowed(config, url.host));
}

/** The message refusing to send credentials over plain http to `url`. */
export function plainHttpRefusal(url: URL, purpose: string): string {
  return `${purpose} over plain http (${url.origin}): crib sends credentials over plain http only to loopback ` +
    `and to hosts configured insecure; serve it over https, or set insecure = true under [registry."${url.host}"] ` +
    'if that network is trusted';
}

const PRIVATE_V4 = [/^0\./, /^127\./, /^169\.254\./];

/**
 * A host an outside registry must not point us at: this node (loopback, 0.0.0.0) or the
 * link-local range where cloud metadata services answer. IP literals only; names are not
 * resolved (a DNS answer can change between this check and the connection anyway).
 */
export function isNodeLocalAddress(host: string): boolean {
  if (isLoopbackHost(host)) return true;
  const h = hostOf(host).toLowerCase();
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(h)) return PRIVATE_V4.some((re) => re.test(h));
  return h === '::' || h.startsWith('fe80:');
}
