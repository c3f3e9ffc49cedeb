/** Where job callbacks may go: http(s) URLs whose host is public, unless the operator allows it (SKADI_CALLBACK_ALLOW). */
import dns from 'node:dns';
import net from 'node:net';
import { AdapterError } from '../../adapters/contract';
import { AddressSet, internalKind, type InternalKind } from './address-kind';
import { BadRequestError } from '../errors';

/** One address of a host name. */
export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a host name to all its addresses (dns.lookup by default; tests inject one). */
export type HostResolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** A checked callback: its URL and the addresses a delivery may connect to (empty when the host is an IP literal). */
export interface CallbackTarget {
  url: URL;
  addresses: ResolvedAddress[];
}

/** The operating system's resolver (getaddrinfo: /etc/hosts, then DNS), every address. */
export const systemResolver: HostResolver = (hostname) => dns.promises.lookup(hostname, { all: true });

const ALLOW_HINT = 'set SKADI_CALLBACK_ALLOW to allow internal receivers';
/** How long a push waits for DNS before accepting the URL (the delivery checks it again). */
const PUSH_LOOKUP_MS = 3000;

/** The URL as shown in messages: no query or fragment (they may carry credentials), at most 200 characters. */
function shown(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`.slice(0, 200);
}

/** "a loopback address", "an unspecified address" (of the kinds, only "unspecified" sounds like a vowel first). */
function kindPhrase(kind: InternalKind): string {
  return `${kind === 'unspecified' ? 'an' : 'a'} ${kind} address`;
}

/** Checks callback URLs at push and pins each delivery to the addresses it checked. */
export class CallbackGuard {
  private readonly allowedAddresses: AddressSet;
  private readonly allowedHosts: Set<string>;

  /** `allow` holds CIDRs, addresses and host names that may be internal. */
  constructor(
    allow: string[],
    private readonly resolve: HostResolver = systemResolver,
  ) {
    const isAddress = (entry: string) => net.isIP(entry.split('/')[0]) !== 0;
    this.allowedAddresses = new AddressSet(allow.filter(isAddress));
    this.allowedHosts = new Set(allow.filter((e) => !isAddress(e)).map((e) => e.toLowerCase().replace(/\.$/, '')));
  }

  /** At push: throws a BadRequestError for a refused URL; a name that does not resolve now is accepted (delivery checks again). */
  async checkAtPush(text: string): Promise<void> {
    const { url, name } = this.parse(text);
    if (name === null || this.allowedHosts.has(name)) return;
    const addresses = await this.lookupWithin(name, PUSH_LOOKUP_MS);
    if (addresses) this.checkAddresses(url, name, addresses);
  }

  /** At delivery: the URL and its checked addresses; an AdapterError `invalid` when refused, `transient` when the name does not resolve. */
  async target(text: string): Promise<CallbackTarget> {
    try {
      const { url, name } = this.parse(text);
      if (name === null) return { url, addresses: [] };
      const addresses = await this.resolve(name).catch((err) => {
        throw new AdapterError('transient', `callback host ${name} does not resolve (${(err as NodeJS.ErrnoException).code ?? err})`);
      });
      if (addresses.length === 0) throw new AdapterError('transient', `callback host ${name} has no address`);
      if (!this.allowedHosts.has(name)) this.checkAddresses(url, name, addresses);
      return { url, addresses };
    } catch (err) {
      if (err instanceof BadRequestError) throw new AdapterError('invalid', err.message);
      throw err;
    }
  }

  /** The URL and its host name (lower case, no trailing dot), or name null for an IP literal that passed the check. */
  private parse(text: string): { url: URL; name: string | null } {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new BadRequestError('callback is not a valid URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new BadRequestError(`callback ${shown(url)} must be an http: or https: URL`);
    if (url.username || url.password) throw new BadRequestError(`callback ${shown(url)} must not carry a user name or password`);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (net.isIP(host)) {
      const kind = this.refusalOf(host);
      if (kind) throw new BadRequestError(`callback ${shown(url)} points to ${kindPhrase(kind)}; ${ALLOW_HINT}`);
      return { url, name: null };
    }
    const name = host.replace(/\.$/, '');
    if ((name === 'localhost' || name.endsWith('.localhost')) && !this.allowedHosts.has(name)) {
      throw new BadRequestError(`callback ${shown(url)} points to a loopback address (${name}); ${ALLOW_HINT}`);
    }
    return { url, name };
  }

  /** Throws a BadRequestError when any address of the name is internal and not allowed. */
  private checkAddresses(url: URL, name: string, addresses: ResolvedAddress[]): void {
    for (const { address } of addresses) {
      const kind = this.refusalOf(address);
      if (kind) throw new BadRequestError(`callback ${shown(url)}: ${name} resolves to ${address}, ${kindPhrase(kind)}; ${ALLOW_HINT}`);
    }
  }

  /** Why an address is refused, or null when it is public or allowed. */
  private refusalOf(address: string): InternalKind | null {
    return this.allowedAddresses.has(address) ? null : internalKind(address);
  }

  /** The addresses of a name, or null when it does not resolve within ms. */
  private async lookupWithin(name: string, ms: number): Promise<ResolvedAddress[] | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
    try {
      return await Promise.race([this.resolve(name).catch(() => null), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
