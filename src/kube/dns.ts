// The pod's DNS config as kubelet builds it. With no cluster DNS on a node run by hand, the
// "ClusterFirst" policy falls back to "Default" just as kubelet does when it has no clusterDNS:
// the node's resolv.conf (nameservers, search domains, options). "None" uses only dnsConfig,
// and dnsConfig's entries are merged into the others (nameservers and searches appended without
// duplicates, options replaced by name).
export interface DnsConfig {
  servers: string[];
  searches: string[];
  options: string[];
}

export interface PodDnsSpec {
  dnsPolicy?: string;
  dnsConfig?: { nameservers?: string[]; searches?: string[]; options?: { name?: string; value?: string }[] };
}

export const MAX_DNS_SERVERS = 3;
export const MAX_DNS_SEARCHES = 32;

export function parseResolvConf(text: string): DnsConfig {
  const out: DnsConfig = { servers: [], searches: [], options: [] };
  for (const line of text.split('\n')) {
    const fields = line.replace(/[#;].*$/, '').trim().split(/\s+/).filter(Boolean);
    if (fields.length < 2) continue;
    if (fields[0] === 'nameserver') out.servers.push(fields[1]!);
    else if (fields[0] === 'search' || fields[0] === 'domain') out.searches = fields.slice(1);
    else if (fields[0] === 'options') out.options.push(...fields.slice(1));
  }
  return out;
}

const unique = (xs: string[]) => [...new Set(xs)];

export function podDnsConfig(spec: PodDnsSpec, hostResolvConf: string): DnsConfig {
  const base = spec.dnsPolicy === 'None' ? { servers: [], searches: [], options: [] } : parseResolvConf(hostResolvConf);
  const extra = spec.dnsConfig;
  const servers = unique([...base.servers, ...(extra?.nameservers ?? [])]).slice(0, MAX_DNS_SERVERS);
  const searches = unique([...base.searches, ...(extra?.searches ?? [])]).slice(0, MAX_DNS_SEARCHES);
  const options = new Map<string, string>();
  for (const o of base.options) options.set(o.split(':')[0]!, o);
  for (const o of extra?.options ?? []) if (o.name) options.set(o.name, o.value ? `${o.name}:${o.value}` : o.name);
  return { servers, searches, options: [...options.values()] };
}
