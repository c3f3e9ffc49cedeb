/** What kind of IP address a callback would reach: public, or one of the internal and reserved kinds (IANA special-purpose registries). */
import net from 'node:net';

/** The kinds of address that are not public. */
export type InternalKind =
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'unique-local'
  | 'multicast'
  | 'shared (CGNAT)'
  | 'unspecified'
  | 'broadcast'
  | 'reserved';

/** Each kind with its IPv4 and IPv6 ranges; the first kind that matches names an address. */
const RANGES: [InternalKind, string[]][] = [
  ['loopback', ['127.0.0.0/8', '::1/128']],
  ['unspecified', ['0.0.0.0/8', '::/128']],
  ['private', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']],
  ['link-local', ['169.254.0.0/16', 'fe80::/10']],
  ['unique-local', ['fc00::/7']],
  ['multicast', ['224.0.0.0/4', 'ff00::/8']],
  ['shared (CGNAT)', ['100.64.0.0/10']],
  ['broadcast', ['255.255.255.255/32']],
  [
    'reserved',
    [
      '192.0.0.0/24',
      '192.0.2.0/24',
      '192.88.99.0/24',
      '198.18.0.0/15',
      '198.51.100.0/24',
      '203.0.113.0/24',
      '240.0.0.0/4',
      // IPv6 outside global unicast (2000::/3), and the special blocks inside it: IETF protocols and Teredo, documentation, 6to4, SRv6.
      '::/3',
      '4000::/2',
      '8000::/1',
      '2001::/23',
      '2001:db8::/32',
      '2002::/16',
      '3fff::/20',
      '5f00::/16',
    ],
  ],
];

/** A set of CIDRs; an address is compared in its deciding form and only with the rules of its own family. */
export class AddressSet {
  // One BlockList per family: a BlockList would also match IPv4 addresses against IPv6 rules (as mapped addresses).
  private readonly ipv4 = new net.BlockList();
  private readonly ipv6 = new net.BlockList();

  constructor(cidrs: string[]) {
    for (const cidr of cidrs) {
      const [address, prefix] = cidr.split('/');
      const family = net.isIPv6(address) ? 'ipv6' : 'ipv4';
      this[family].addSubnet(address, prefix === undefined ? (family === 'ipv6' ? 128 : 32) : Number(prefix), family);
    }
  }

  /** True when the address (its embedded IPv4 for mapped, compatible and NAT64 forms) is in one of the ranges. */
  has(address: string): boolean {
    const ip = decidingAddress(address);
    const family = net.isIP(ip);
    if (family === 0) return false;
    return family === 6 ? this.ipv6.check(ip, 'ipv6') : this.ipv4.check(ip, 'ipv4');
  }
}

/** IPv6 ranges whose last 32 bits are an IPv4 address that decides: IPv4-mapped, IPv4-compatible, NAT64 (RFC 6052). */
const EMBEDDING_IPV4 = new net.BlockList();
for (const prefix of ['::ffff:0:0', '::', '64:ff9b::']) EMBEDDING_IPV4.addSubnet(prefix, 96, 'ipv6');

const KINDS = RANGES.map(([kind, cidrs]) => ({ kind, set: new AddressSet(cidrs) }));

/** An address in the form the URL parser writes it (lower-case, IPv6 compressed, no brackets, no zone). */
export function canonicalAddress(address: string): string {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  if (!net.isIPv6(bare)) return bare;
  return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
}

/** The IPv4 address carried in the last 32 bits of a mapped, compatible or NAT64 IPv6 address; null for any other. */
export function embeddedIPv4(address: string): string | null {
  const v6 = canonicalAddress(address);
  if (!net.isIPv6(v6) || v6 === '::' || v6 === '::1' || !EMBEDDING_IPV4.check(v6, 'ipv6')) return null;
  const groups = v6.split(':');
  const [high, low] = groups.slice(-2).map((g) => parseInt(g || '0', 16));
  return [high >> 8, high & 255, low >> 8, low & 255].join('.');
}

/** The address that decides where a connection goes: the embedded IPv4 of a mapped, compatible or NAT64 address, else itself. */
export function decidingAddress(address: string): string {
  return embeddedIPv4(address) ?? canonicalAddress(address);
}

/** The internal kind of an IP address, or null when it is public (globally routable); anything not an address is reserved. */
export function internalKind(address: string): InternalKind | null {
  if (net.isIP(decidingAddress(address)) === 0) return 'reserved';
  return KINDS.find(({ set }) => set.has(address))?.kind ?? null;
}
