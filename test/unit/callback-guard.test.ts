import { ConfigError, loadConfig, redactConfig } from '../../config';
import { AddressSet, internalKind } from '../../cloud/notifier/address-kind';
import { CallbackGuard, type HostResolver } from '../../cloud/notifier/callback-guard';
import { BadRequestError } from '../../cloud/errors';
import { AdapterError } from '../../adapters/contract';

/** A resolver answering from a table; unknown names fail as DNS does. */
function fakeResolver(table: Record<string, string[]>): HostResolver {
  return async (name) => {
    const addresses = table[name];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
}

describe('internalKind', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::127.0.0.1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['::ffff:10.0.0.1', 'private'],
    ['64:ff9b::a00:1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['fd00::1', 'unique-local'],
    ['fc00::1', 'unique-local'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['100.64.0.1', 'shared (CGNAT)'],
    ['100.127.255.255', 'shared (CGNAT)'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.10', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['2002:7f00:1::1', 'reserved'],
    ['64:ff9b:1::1', 'reserved'],
    ['100::1', 'reserved'],
    ['not an address', 'reserved'],
  ])('%s is %s', (address, kind) => {
    expect(internalKind(address)).toBe(kind);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '172.32.0.1',
    '100.128.0.1',
    '192.169.0.1',
    '2606:4700::1111',
    '2001:4860:4860::8888',
    '::ffff:8.8.8.8',
    '64:ff9b::8.8.8.8',
  ])('%s is public', (address) => {
    expect(internalKind(address)).toBeNull();
  });
});

describe('AddressSet', () => {
  it('compares each address with the rules of its own family, mapped forms as IPv4', () => {
    const set = new AddressSet(['127.0.0.1/32', '::/0']);
    expect(set.has('127.0.0.1')).toBe(true);
    expect(set.has('::ffff:127.0.0.1')).toBe(true);
    expect(set.has('127.0.0.2')).toBe(false); // an IPv4 address is not matched by the IPv6 rule ::/0
    expect(set.has('fd00::1')).toBe(true);
  });
});

describe('CallbackGuard', () => {
  const resolver = fakeResolver({
    'public.test': ['93.184.216.34'],
    'mixed.test': ['93.184.216.34', '10.1.2.3'],
    'hooks.internal': ['10.9.9.9'],
    'v6.test': ['fd00::5'],
  });

  it('accepts public hosts and names that do not resolve yet', async () => {
    const guard = new CallbackGuard([], resolver);
    await expect(guard.checkAtPush('https://public.test/hook?x=1')).resolves.toBeUndefined();
    await expect(guard.checkAtPush('http://93.184.216.34:8080/')).resolves.toBeUndefined();
    await expect(guard.checkAtPush('https://not-yet.test/hook')).resolves.toBeUndefined();
  });

  it('refuses a name if any of its addresses is internal, naming the address and the setting', async () => {
    const guard = new CallbackGuard([], resolver);
    await expect(guard.checkAtPush('https://mixed.test/hook')).rejects.toThrow(
      'callback https://mixed.test/hook: mixed.test resolves to 10.1.2.3, a private address; set SKADI_CALLBACK_ALLOW to allow internal receivers',
    );
    await expect(guard.checkAtPush('https://v6.test/')).rejects.toThrow(/resolves to fd00::5, a unique-local address/);
  });

  it('refuses other schemes, credentials in the URL, and localhost names without asking DNS', async () => {
    const guard = new CallbackGuard([], async () => {
      throw new Error('DNS must not be asked');
    });
    await expect(guard.checkAtPush('ftp://public.test/')).rejects.toThrow(/must be an http: or https: URL/);
    await expect(guard.checkAtPush('http://user:pw@public.test/')).rejects.toThrow(/must not carry a user name or password/);
    await expect(guard.checkAtPush('http://app.localhost./x')).rejects.toThrow(/loopback address \(app.localhost\)/);
    await expect(guard.checkAtPush('http://0x7f.1/x')).rejects.toBeInstanceOf(BadRequestError);
  });

  it('lets SKADI_CALLBACK_ALLOW open CIDRs and host names', async () => {
    const guard = new CallbackGuard(['10.0.0.0/8', 'hooks.internal', 'localhost'], resolver);
    await expect(guard.checkAtPush('https://mixed.test/hook')).resolves.toBeUndefined();
    await expect(guard.checkAtPush('http://[::ffff:10.0.0.1]/')).resolves.toBeUndefined();
    await expect(guard.checkAtPush('http://localhost:9/')).resolves.toBeUndefined();
    await expect(guard.checkAtPush('http://192.168.0.1/')).rejects.toThrow(/private address/);
    await expect(guard.target('https://hooks.internal/x')).resolves.toMatchObject({ addresses: [{ address: '10.9.9.9', family: 4 }] });
  });

  it('at delivery: refusals are final, unresolvable names are transient', async () => {
    const guard = new CallbackGuard([], resolver);
    const refused = await guard.target('https://mixed.test/hook').catch((err) => err);
    expect(refused).toBeInstanceOf(AdapterError);
    expect(refused).toMatchObject({ code: 'invalid', retryable: false });
    const missing = await guard.target('https://gone.test/hook').catch((err) => err);
    expect(missing).toMatchObject({ code: 'transient', message: 'callback host gone.test does not resolve (ENOTFOUND)' });
    await expect(guard.target('https://public.test/x')).resolves.toMatchObject({ addresses: [{ address: '93.184.216.34' }] });
  });
});

describe('callback settings', () => {
  it('reads SKADI_CALLBACK_ALLOW as CIDRs and host names, and refuses anything else', () => {
    expect(loadConfig({ env: { SKADI_CALLBACK_ALLOW: '10.0.0.0/8, fd00::/8,127.0.0.1 ,hooks.internal' } }).callbackAllow).toEqual([
      '10.0.0.0/8',
      'fd00::/8',
      '127.0.0.1',
      'hooks.internal',
    ]);
    expect(loadConfig({ env: {} }).callbackAllow).toEqual([]);
    expect(() => loadConfig({ env: { SKADI_CALLBACK_ALLOW: '10.0.0.0/33' } })).toThrow(
      /SKADI_CALLBACK_ALLOW.*CIDRs, IP addresses or host names/,
    );
    expect(() => loadConfig({ env: { SKADI_CALLBACK_ALLOW: 'http://hooks.internal/' } })).toThrow(ConfigError);
  });

  it('wants SKADI_SECRET of 32 characters or more, and never shows it', () => {
    expect(loadConfig({ env: {} }).secret).toBe('');
    expect(() => loadConfig({ env: { SKADI_SECRET: 'too-short-secret' } })).toThrow(
      /secret \(SKADI_SECRET\) from SKADI_SECRET = \(hidden\): must be at least 32 characters/,
    );
    const config = loadConfig({ env: { SKADI_SECRET: 'x'.repeat(40) } });
    expect(JSON.stringify(redactConfig(config))).not.toContain('x'.repeat(40));
  });
});
