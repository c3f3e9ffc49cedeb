/** Sender authentication of mail: only the receiving server's Authentication-Results count, with DKIM/SPF aligned to From. */
import { aligned, authenticateSender, parseAuthResults } from '../../adapters/email/sender-auth';

const ID = 'mx.ops.example.net';

describe('parseAuthResults', () => {
  it('reads the authserv-id and each method, ignoring comments and version numbers', () => {
    const parsed = parseAuthResults('MX.ops.example.net 1; dkim=pass (2048-bit key; unprotected) header.d=Example.COM header.s=sel1 header.b=abc; spf=softfail (sender IP is 1.2.3.4) smtp.mailfrom=bounce@example.com; dmarc=pass header.from=example.com');
    expect(parsed.authservId).toBe('mx.ops.example.net');
    expect(parsed.results).toEqual([
      { method: 'dkim', result: 'pass', props: { 'header.d': 'example.com', 'header.s': 'sel1', 'header.b': 'abc' } },
      { method: 'spf', result: 'softfail', props: { 'smtp.mailfrom': 'bounce@example.com' } },
      { method: 'dmarc', result: 'pass', props: { 'header.from': 'example.com' } },
    ]);
  });

  it('takes `none` results and headers without results', () => {
    expect(parseAuthResults('mx.ops.example.net; none').results).toEqual([]);
    expect(parseAuthResults('').authservId).toBe('');
  });
});

describe('aligned', () => {
  it('accepts the From domain and its subdomains, nothing else', () => {
    expect(aligned('example.com', 'example.com')).toBe(true);
    expect(aligned('mail.example.com', 'example.com')).toBe(true);
    expect(aligned('badexample.com', 'example.com')).toBe(false);
    expect(aligned('example.com.evil.net', 'example.com')).toBe(false);
    expect(aligned('com', 'example.com')).toBe(false);
    expect(aligned(undefined, 'example.com')).toBe(false);
  });
});

describe('authenticateSender', () => {
  const pass = `${ID}; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=alice@example.com`;

  it('accepts an aligned DKIM pass from our authserv-id', () => {
    expect(authenticateSender([pass], 'alice@example.com', ID, 'dkim')).toEqual({ ok: true, by: 'dkim' });
    expect(authenticateSender([`${ID}; dkim=pass header.d=mail.example.com`], 'alice@example.com', ID, 'dkim').ok).toBe(true);
    expect(authenticateSender([`${ID}; dkim=pass header.i=@example.com`], 'alice@example.com', ID, 'dkim').ok).toBe(true);
  });

  it.each([
    ['dkim=fail', [`${ID}; dkim=fail header.d=example.com`]],
    ['a pass claimed by another server', ['mx.attacker.example; dkim=pass header.d=example.com']],
    ['no header', []],
    ['an unaligned pass', [`${ID}; dkim=pass header.d=example.org`]],
    ['a look-alike domain', [`${ID}; dkim=pass header.d=example.com.evil.net`]],
    ['spf only, when dkim is required', [`${ID}; spf=pass smtp.mailfrom=alice@example.com`]],
  ])('refuses %s, with the reason', (_what, headers) => {
    const verdict = authenticateSender(headers, 'alice@example.com', ID, 'dkim');
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) expect(verdict.reason.length).toBeGreaterThan(5);
  });

  it('lets the requirement choose spf, either, or none', () => {
    const spfOnly = [`${ID}; dkim=fail header.d=example.com; spf=pass smtp.mailfrom=alice@example.com`];
    expect(authenticateSender(spfOnly, 'alice@example.com', ID, 'spf')).toEqual({ ok: true, by: 'spf' });
    expect(authenticateSender(spfOnly, 'alice@example.com', ID, 'dkim-or-spf')).toEqual({ ok: true, by: 'spf' });
    expect(authenticateSender([`${ID}; spf=pass smtp.mailfrom=bounce@other.net`], 'alice@example.com', ID, 'spf').ok).toBe(false);
    expect(authenticateSender([], 'alice@example.com', ID, 'none').ok).toBe(true);
  });

  it('compares the authserv-id without regard to case', () => {
    expect(authenticateSender([`MX.OPS.EXAMPLE.NET; dkim=pass header.d=EXAMPLE.com`], 'Alice@Example.com', ID, 'dkim').ok).toBe(true);
  });
});
