import type { Context } from 'koa';
import { clientAddress, parseProxyTrust } from '../../agent-api/client-address';
import { loadConfig } from '../../config';

/** A request as Koa shows it: the socket's peer and the X-Forwarded-For header. */
const request = (socket: string, forwardedFor?: string) =>
  ({
    req: { socket: { remoteAddress: socket } },
    get: (name: string) => (name === 'x-forwarded-for' ? (forwardedFor ?? '') : ''),
  }) as unknown as Context;

describe('clientAddress', () => {
  it('is the socket address when no proxy is trusted, whatever the header says', () => {
    expect(clientAddress(request('::ffff:10.0.0.5', '203.0.113.9'), parseProxyTrust([]))).toBe('10.0.0.5');
    expect(clientAddress(request('10.0.0.5', '203.0.113.9'), parseProxyTrust(['0']))).toBe('10.0.0.5');
  });

  it('counts trusted hops from the nearest', () => {
    const oneHop = parseProxyTrust(['1']);
    expect(clientAddress(request('10.0.0.2', '203.0.113.9'), oneHop)).toBe('203.0.113.9');
    expect(clientAddress(request('10.0.0.2', '6.6.6.6, 203.0.113.9'), oneHop)).toBe('203.0.113.9'); // a forged hop is ignored
    expect(clientAddress(request('10.0.0.2'), oneHop)).toBe('10.0.0.2');
  });

  it('skips trusted proxies by CIDR, IPv4 and IPv6', () => {
    const trust = parseProxyTrust(['10.0.0.0/8', 'fd00::/8']);
    expect(clientAddress(request('10.1.2.3', '6.6.6.6, 203.0.113.9, 10.9.9.9'), trust)).toBe('203.0.113.9');
    expect(clientAddress(request('fd00::1', '2001:db8::7'), trust)).toBe('2001:db8::7');
    expect(clientAddress(request('192.0.2.1', '203.0.113.9'), trust)).toBe('192.0.2.1'); // not from a trusted proxy
  });
});

describe('trust_proxy setting', () => {
  it('refuses what is no hop count, address or CIDR, with one clear line', () => {
    expect(loadConfig({ env: { SKADI_TRUST_PROXY: '10.0.0.0/8,fd00::/8' } }).trustProxy).toEqual(['10.0.0.0/8', 'fd00::/8']);
    expect(loadConfig({ env: { SKADI_TRUST_PROXY: '2' } }).trustProxy).toEqual(['2']);
    for (const bad of ['999.1.1.1', '10.0.0.0/33', 'proxy.internal']) {
      expect(() => loadConfig({ env: { SKADI_TRUST_PROXY: bad } })).toThrow(/SKADI_TRUST_PROXY.*must be a number of proxy hops/);
    }
  });
});
