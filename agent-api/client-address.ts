/** The client's address behind trusted proxies: the socket's, or the nearest untrusted hop of X-Forwarded-For. */
import net from 'node:net';
import type { Context } from 'koa';

/** Which proxies in front of the gateway are trusted to tell the client's address. */
export type ProxyTrust = { kind: 'none' } | { kind: 'hops'; hops: number } | { kind: 'cidrs'; list: net.BlockList };

/** Parses SKADI_TRUST_PROXY: empty (trust no proxy), a hop count, or a comma-separated list of CIDRs and addresses. */
export function parseProxyTrust(entries: readonly string[]): ProxyTrust {
  if (entries.length === 0) return { kind: 'none' };
  if (entries.length === 1 && /^\d{1,2}$/.test(entries[0])) {
    const hops = Number(entries[0]);
    return hops === 0 ? { kind: 'none' } : { kind: 'hops', hops };
  }
  const list = new net.BlockList();
  for (const entry of entries) {
    const [address, prefix] = entry.split('/');
    const family = net.isIPv6(address) ? 'ipv6' : net.isIPv4(address) ? 'ipv4' : null;
    if (!family) throw new Error(`"${entry}" is not an IP address or CIDR`);
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(prefix), family);
  }
  return { kind: 'cidrs', list };
}

/** Strips the IPv4-mapped IPv6 prefix that Node puts on IPv4 peers of a dual-stack socket. */
function plain(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

function trusted(list: net.BlockList, address: string): boolean {
  const family = net.isIPv6(address) ? 'ipv6' : 'ipv4';
  return net.isIP(address) !== 0 && list.check(address, family);
}

/** The client address of a request under the given trust (the socket's when no proxy is trusted). */
export function clientAddress(ctx: Context, trust: ProxyTrust): string {
  const socket = plain(ctx.req.socket.remoteAddress ?? '');
  if (trust.kind === 'none') return socket || 'unknown';
  const forwarded = (ctx.get('x-forwarded-for') || '')
    .split(',')
    .map((s) => plain(s.trim()))
    .filter((s) => net.isIP(s) !== 0);
  const chain = [...forwarded, socket]; // the client first, the hop nearest to us last
  if (trust.kind === 'hops') return chain[Math.max(0, chain.length - 1 - trust.hops)] || 'unknown';
  for (let i = chain.length - 1; i >= 0; i--) if (!trusted(trust.list, chain[i])) return chain[i];
  return chain[0] || 'unknown';
}
