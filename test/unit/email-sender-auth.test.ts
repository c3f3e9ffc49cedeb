/**
 * Sender authentication of mail: only the receiving server's Authentication-Results count (the topmost header with its
 * authserv-id), parsed strictly, with DKIM/SPF aligned to From. Header values are as Postfix with OpenDKIM, mailauth
 * and Microsoft 365 write them.
 */
import { leadingAuthservId, parseAuthResults } from '../../adapters/email/auth-results';
import { aligned, authenticateSender, trustedHeaders, type HeaderField, type SenderAuthSettings } from '../../adapters/email/sender-auth';

const ID = 'mx.ops.example.net';
const DKIM: SenderAuthSettings = { authservId: ID, format: 'rfc8601', require: 'dkim' };
const MS: SenderAuthSettings = { authservId: '', format: 'microsoft365', require: 'dkim' };
const ar = (value: string): HeaderField => ({ key: 'authentication-results', value });
const received = (by: string): HeaderField => ({
  key: 'received',
  value: `from sender.example.com (sender.example.com [192.0.2.7]) by ${by} (Postfix) with ESMTPS id 4AbC; Tue, 1 Dec 2026 10:00:00 +0000`,
});
const check = (headers: HeaderField[], settings = DKIM, from = 'alice@example.com') => authenticateSender(headers, from, settings);

/** What OpenDKIM 2.11 writes (unfolded) for a good signature. */
const OPENDKIM_PASS = `${ID}; dkim=pass (2048-bit key; unprotected) header.d=example.com header.i=@example.com header.a=rsa-sha256 header.s=sel header.b=AbCdEf12;`;
/** Microsoft 365 (Exchange Online Protection), exactly as it writes it: no authserv-id. */
const MS_PASS =
  'spf=pass (sender IP is 1.2.3.4) smtp.mailfrom=example.com; dkim=pass (signature was verified) header.d=example.com;dmarc=pass action=none header.from=example.com;compauth=pass reason=100';
const MS_FAIL =
  'spf=fail (sender IP is 203.0.113.9) smtp.mailfrom=example.com; dkim=none (message not signed) header.d=none;dmarc=fail action=oreject header.from=example.com;compauth=fail reason=000';

describe('parseAuthResults', () => {
  it("reads OpenDKIM's header: comments with a `;` in them, the trailing `;`", () => {
    expect(parseAuthResults(OPENDKIM_PASS)).toEqual({
      authservId: ID,
      results: [
        {
          method: 'dkim',
          result: 'pass',
          props: {
            'header.d': 'example.com',
            'header.i': '@example.com',
            'header.a': 'rsa-sha256',
            'header.s': 'sel',
            'header.b': 'abcdef12',
          },
        },
      ],
    });
  });

  it('reads versions, nested comments, several results and quoted reasons', () => {
    const parsed = parseAuthResults(
      'MX.ops.example.net 1; dkim=pass (good (really; yes)) header.d=Example.COM header.s=sel1 header.b=abc; spf=softfail (sender IP is 1.2.3.4) smtp.mailfrom=bounce@example.com; dmarc=fail reason="p=reject; yes" header.from=example.com',
    );
    expect(parsed.authservId).toBe('mx.ops.example.net');
    expect(parsed.results).toEqual([
      { method: 'dkim', result: 'pass', props: { 'header.d': 'example.com', 'header.s': 'sel1', 'header.b': 'abc' } },
      { method: 'spf', result: 'softfail', props: { 'smtp.mailfrom': 'bounce@example.com' } },
      { method: 'dmarc', result: 'fail', props: { reason: 'p=reject; yes', 'header.from': 'example.com' } },
    ]);
  });

  it('reads a quoted local part with its domain as one value', () => {
    expect(parseAuthResults(`${ID}; spf=pass smtp.mailfrom="alice smith"@example.com`).results[0].props).toEqual({
      'smtp.mailfrom': 'alice smith@example.com',
    });
  });

  it('reads a quoted string with a `;` as one value: it starts no result', () => {
    const parsed = parseAuthResults(`${ID}; dkim=fail reason="x; dkim=pass header.d=example.com"`);
    expect(parsed.results).toEqual([{ method: 'dkim', result: 'fail', props: { reason: 'x; dkim=pass header.d=example.com' } }]);
  });

  it("reads `none`, a folded multi-line form (as unfolded) and mailauth's header", () => {
    expect(parseAuthResults(`${ID}; none`).results).toEqual([]);
    const mailauth = `${ID}; dkim=pass header.i=@example.com header.s=sel header.a=rsa-sha256 header.b=qPYAjKLP; spf=none (${ID}: example.com does not designate permitted sender hosts) smtp.mailfrom=alice@example.com smtp.helo=x; dmarc=none header.from=example.com`;
    expect(parseAuthResults(mailauth).results.map((r) => `${r.method}=${r.result}`)).toEqual(['dkim=pass', 'spf=none', 'dmarc=none']);
  });

  it.each([
    ['a trailing garbage token', `${ID}; dkim=pass header.d=example.com garbage`],
    ['garbage after the authserv-id', `${ID} x; dkim=pass header.d=example.com`],
    ['an unclosed comment', `${ID}; dkim=pass (oops header.d=example.com`],
    ['an unclosed quoted string', `${ID}; dkim=fail reason="x; dkim=pass header.d=example.com`],
    ['a stray ")"', `${ID}; dkim=pass ) header.d=example.com`],
    ['a result that is no keyword', `${ID}; dkim=pa!ss header.d=example.com`],
    ['a property without a value', `${ID}; dkim=pass header.d=`],
    ['a property given twice', `${ID}; dkim=pass header.d=evil.example header.d=example.com`],
    ['nothing after the authserv-id', ID],
    ['an empty value', ''],
    ["Microsoft's form read as RFC 8601", MS_PASS],
  ])('refuses %s', (_what, value) => {
    expect(() => parseAuthResults(value)).toThrow(expect.objectContaining({ code: 'auth_results_syntax' }));
  });

  it("reads Microsoft 365's form, and nothing looser", () => {
    expect(parseAuthResults(MS_PASS, 'microsoft365').results).toEqual([
      { method: 'spf', result: 'pass', props: { 'smtp.mailfrom': 'example.com' } },
      { method: 'dkim', result: 'pass', props: { 'header.d': 'example.com' } },
      { method: 'dmarc', result: 'pass', props: { action: 'none', 'header.from': 'example.com' } },
      { method: 'compauth', result: 'pass', props: { reason: '100' } },
    ]);
    expect(() => parseAuthResults(`${MS_PASS} trailing`, 'microsoft365')).toThrow(expect.objectContaining({ code: 'auth_results_syntax' }));
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

describe('which headers are trusted', () => {
  it('trusts the topmost header with our id, and no forged one below it', () => {
    const headers = [received(ID), ar(`${ID}; dkim=fail header.d=example.com`), ar(`${ID}; dkim=pass header.d=example.com`)];
    expect(trustedHeaders(headers, ID, 'rfc8601')).toEqual({ values: [`${ID}; dkim=fail header.d=example.com`] });
    expect(check(headers).ok).toBe(false);
  });

  it('trusts only the topmost one in a mail without any Received: header', () => {
    expect(check([ar(`${ID}; dkim=fail header.d=example.com`), ar(`${ID}; dkim=pass header.d=example.com`)]).ok).toBe(false);
  });

  it('trusts several headers of ours above the first Received: (one per milter), none below it', () => {
    const headers = [
      ar(`${ID}; dmarc=pass header.from=example.com`),
      ar(`${ID}; dkim=pass header.d=example.com`),
      received(ID),
      ar(`${ID}; spf=pass smtp.mailfrom=alice@example.com`),
    ];
    expect(trustedHeaders(headers, ID, 'rfc8601')).toEqual({ values: [headers[0].value, headers[1].value] });
    expect(check(headers)).toMatchObject({ ok: true, by: 'dkim' });
    expect(check(headers, { ...DKIM, require: 'spf' }).ok).toBe(false);
  });

  it("skips other servers' headers above ours and reads ours", () => {
    expect(check([ar('imap.ops.example.net; dkim=fail'), received(ID), ar(OPENDKIM_PASS)])).toMatchObject({ ok: true, by: 'dkim' });
  });

  it('refuses a mail whose trusted header cannot be fully read', () => {
    const verdict = check([received(ID), ar(`${ID}; dkim=pass header.d=example.com garbage`)]);
    expect(verdict).toEqual({ ok: false, reason: expect.stringContaining('cannot be read') });
  });

  it.each(['evil-mx.ops.example.net', 'a.mx.ops.example.net', 'mx.ops.example.net.evil', 'mx.ops.example', '"mx.ops.example.net"x'])(
    'counts only our own id, exactly: not %s',
    (id) => {
      expect(check([ar(`${id}; dkim=pass header.d=example.com`)]).ok).toBe(false);
    },
  );

  it('reads the id past a leading comment, so a forged header below is not taken for ours', () => {
    const headers = [
      received(ID),
      ar(`(by the milter) ${ID}; dkim=fail header.d=example.com`),
      ar(`${ID}; dkim=pass header.d=example.com`),
    ];
    expect(check(headers).ok).toBe(false);
    expect(check([ar(`(x) "${ID}"; dkim=pass header.d=example.com`)]).ok).toBe(true);
  });

  it('compares the authserv-id without regard to case', () => {
    expect(check([ar(`MX.OPS.EXAMPLE.NET; dkim=pass header.d=EXAMPLE.com`)], DKIM, 'Alice@Example.com').ok).toBe(true);
  });
});

describe('authenticateSender', () => {
  const pass = `${ID}; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=alice@example.com`;

  it('accepts an aligned DKIM pass from our authserv-id, and names the results it rests on', () => {
    expect(check([ar(pass)])).toEqual({
      ok: true,
      by: 'dkim',
      dkim: [{ method: 'dkim', result: 'pass', props: { 'header.d': 'example.com' } }],
    });
    expect(check([ar(`${ID}; dkim=pass header.d=mail.example.com`)]).ok).toBe(true);
    expect(check([ar(`${ID}; dkim=pass header.i=@example.com`)]).ok).toBe(true);
    expect(check([received(ID), ar(OPENDKIM_PASS)]).ok).toBe(true);
  });

  it.each([
    ['dkim=fail', [`${ID}; dkim=fail header.d=example.com`], 'no aligned dkim pass for example.com (dkim=fail header.d=example.com)'],
    [
      'a pass claimed by another server',
      ['mx.attacker.example; dkim=pass header.d=example.com'],
      `no Authentication-Results header from ${ID}`,
    ],
    ['no header', [], `no Authentication-Results header from ${ID}`],
    [
      'an unaligned pass',
      [`${ID}; dkim=pass header.d=example.org`],
      'no aligned dkim pass for example.com (dkim=pass header.d=example.org)',
    ],
    [
      'a look-alike domain',
      [`${ID}; dkim=pass header.d=example.com.evil.net`],
      'no aligned dkim pass for example.com (dkim=pass header.d=example.com.evil.net)',
    ],
    [
      'spf only, when dkim is required',
      [`${ID}; spf=pass smtp.mailfrom=alice@example.com`],
      'no aligned dkim pass for example.com (spf=pass smtp.mailfrom=alice@example.com)',
    ],
    [
      'a pass inside a quoted reason',
      [`${ID}; dkim=fail reason="x; dkim=pass header.d=example.com"`],
      'no aligned dkim pass for example.com (dkim=fail)',
    ],
    [
      'a pass inside a comment',
      [`${ID}; dkim=fail (; dkim=pass header.d=example.com)`],
      'no aligned dkim pass for example.com (dkim=fail)',
    ],
    [
      "another method's pass naming the domain",
      [`${ID}; dmarc=pass header.d=example.com header.from=example.com; arc=pass header.d=example.com`],
      'no aligned dkim pass for example.com (no dkim or spf result)',
    ],
    [
      'an unreadable trusted header',
      [`${ID}; dkim=pass header.d=example.com junk`],
      'the trusted Authentication-Results header cannot be read (not a property: "junk")',
    ],
  ])('refuses %s, with the reason', (_what, values, reason) => {
    expect(check(values.map(ar))).toEqual({ ok: false, reason });
  });

  it('refuses a mail without a From address, or with one that has no domain', () => {
    expect(check([ar(pass)], DKIM, '')).toEqual({ ok: false, reason: 'no From address' });
    expect(check([ar(`${ID}; dkim=pass header.d=alice`)], DKIM, 'alice')).toEqual({ ok: false, reason: 'no From address' });
  });

  it('reads a pass for the From domain written with a final dot, and header.i of a subdomain', () => {
    expect(check([ar(`${ID}; dkim=pass header.d=example.com.`)]).ok).toBe(true);
    expect(check([ar(`${ID}; dkim=pass header.i=bob@mail.EXAMPLE.com`)]).ok).toBe(true);
    expect(check([ar(`${ID}; dkim=pass header.i=@example.org`)])).toEqual({
      ok: false,
      reason: 'no aligned dkim pass for example.com (dkim=pass)',
    });
  });

  it('takes SPF only as a pass, only for the From domain, with smtp.mailfrom as an address or a domain', () => {
    const spf = { ...DKIM, require: 'spf' as const };
    expect(check([ar(`${ID}; spf=fail smtp.mailfrom=alice@example.com`)], spf)).toEqual({
      ok: false,
      reason: 'no aligned spf pass for example.com (spf=fail smtp.mailfrom=alice@example.com)',
    });
    expect(check([ar(`${ID}; spf=softfail smtp.mailfrom=example.com`)], spf).ok).toBe(false);
    expect(check([ar(`${ID}; dkim=pass smtp.mailfrom=alice@example.com`)], spf)).toEqual({
      ok: false,
      reason: 'no aligned spf pass for example.com (dkim=pass smtp.mailfrom=alice@example.com)',
    });
    expect(check([ar(`${ID}; spf=pass smtp.mailfrom=example.com`)], spf)).toEqual({ ok: true, by: 'spf', dkim: [] });
    expect(check([ar(`${ID}; spf=pass smtp.mailfrom=bounce@mail.example.com`)], spf)).toEqual({ ok: true, by: 'spf', dkim: [] });
    expect(check([ar(`${ID}; spf=pass`)], spf)).toEqual({ ok: false, reason: 'no aligned spf pass for example.com (spf=pass)' });
    // DKIM does not stand in for SPF when SPF is required.
    expect(check([ar(`${ID}; dkim=pass header.d=example.com`)], spf).ok).toBe(false);
  });

  it('takes either when told, DKIM first', () => {
    const either = { ...DKIM, require: 'dkim-or-spf' as const };
    expect(check([ar(pass)], either)).toEqual({
      ok: true,
      by: 'dkim',
      dkim: [{ method: 'dkim', result: 'pass', props: { 'header.d': 'example.com' } }],
    });
    expect(check([ar(`${ID}; dkim=pass header.d=example.com`)], either)).toMatchObject({ ok: true, by: 'dkim' });
    expect(check([ar(`${ID}; dkim=fail header.d=example.com; spf=fail smtp.mailfrom=alice@example.com`)], either)).toEqual({
      ok: false,
      reason: 'no aligned dkim or spf pass for example.com (dkim=fail header.d=example.com, spf=fail smtp.mailfrom=alice@example.com)',
    });
    expect(check([], { ...DKIM, require: 'none' })).toEqual({ ok: true, by: 'none (SKADI_EMAIL_REQUIRE=none)', dkim: [] });
  });

  it('lets the requirement choose spf, either, or none', () => {
    const spfOnly = [ar(`${ID}; dkim=fail header.d=example.com; spf=pass smtp.mailfrom=alice@example.com`)];
    expect(check(spfOnly, { ...DKIM, require: 'spf' })).toMatchObject({ ok: true, by: 'spf' });
    expect(check(spfOnly, { ...DKIM, require: 'dkim-or-spf' })).toMatchObject({ ok: true, by: 'spf' });
    expect(check([ar(`${ID}; spf=pass smtp.mailfrom=bounce@other.net`)], { ...DKIM, require: 'spf' }).ok).toBe(false);
    expect(check([], { ...DKIM, require: 'none' }).ok).toBe(true);
  });
});

describe('Microsoft 365', () => {
  it('accepts its topmost header as it writes it', () => {
    expect(check([received('AM0PR01MB1234.eurprd01.prod.exchangelabs.com'), ar(MS_PASS)], MS)).toMatchObject({ ok: true, by: 'dkim' });
    expect(check([ar(MS_PASS)], { ...MS, require: 'spf' })).toMatchObject({ ok: true, by: 'spf' });
  });

  it('refuses its fail, a forged pass below it, and a header in RFC 8601 form', () => {
    expect(check([ar(MS_FAIL)], MS).ok).toBe(false);
    expect(check([ar(MS_FAIL), ar(MS_PASS)], MS).ok).toBe(false);
    expect(check([ar(`${ID}; dkim=pass header.d=example.com`)], MS)).toEqual({
      ok: false,
      reason: expect.stringContaining('cannot be read'),
    });
    expect(check([], MS)).toEqual({ ok: false, reason: 'no Authentication-Results header (Microsoft 365 form)' });
  });
});

describe('parseAuthResults refusals', () => {
  const long = 'x'.repeat(60);
  it.each([
    [`${ID}; dkim=pass header.d=example.com garbage`, 'not a property: "garbage"'],
    [`${ID} x; dkim=pass header.d=example.com`, 'expected ";", found "x"'],
    [`${ID}; dkim=pass (oops header.d=example.com`, 'a comment is not closed'],
    [`${ID}; dkim=pass (a (b) header.d=example.com`, 'a comment is not closed'],
    [`${ID}; dkim=fail reason="x; dkim=pass`, 'a quoted string is not closed'],
    [`${ID}; dkim=fail reason="x\\`, 'a quoted string is not closed'],
    [`${ID}; dkim=pass ) header.d=example.com`, 'a ")" without its "("'],
    [`${ID}; dkim=pa!ss header.d=example.com`, 'not a result: "pa!ss"'],
    [`${ID}; dkim=pass header.d=`, 'expected a value, found the end'],
    [`${ID}; dkim=pass header.d==`, 'expected a value, found "="'],
    [`${ID}; dkim=pass header.d=evil.example header.d=example.com`, 'header.d given twice'],
    [ID, 'no result after the authserv-id'],
    ['', 'expected a value, found the end'],
    [`${ID}; dkim/x=pass`, 'not a method: "dkim/x"'],
    [`${ID}; dkim/1/2=pass`, 'not a method: "dkim/1/2"'],
    [`${ID}; -dkim=pass`, 'not a method: "-dkim"'],
    [`${ID}; dkim- =pass`, 'not a method: "dkim-"'],
    [`${ID}; dkim pass`, 'expected "=", found "pass"'],
    [`${ID}; dkim`, 'expected "=", found the end'],
    [`${ID}; dkim=`, 'expected a word, found the end'],
    [`${ID}; dkim=pass headerd=example.com`, 'not a property: "headerd"'],
    [`${ID}; dkim=pass header.=example.com`, 'not a property: "header."'],
    [`${ID}; dkim=pass .d=example.com`, 'not a property: ".d"'],
    [`${ID}; dmarc=pass action=none`, 'not a property: "action"'],
    [`${ID} dkim=pass`, 'expected ";", found "dkim"'],
    [`${ID}; dkim=pass header.d=a\\b`, 'an unexpected "\\\\"'],
    [`${ID}; none; dkim=pass`, 'expected "=", found ";"'],
    [`${ID};; dkim=pass`, 'expected a word, found ";"'],
    [`${ID}; dkim="pass"`, 'expected a word, found "pass"'],
    [`${ID}; dkim=pass "quoted"=x`, 'unexpected "quoted" after the dkim result'],
    [`${ID}; ${long}!=pass`, `not a method: "${'x'.repeat(40)}"`],
    [`${ID}; dkim=${long}!`, `not a result: "${'x'.repeat(40)}"`],
    [`${ID}; dkim=pass ${long}=1`, `not a property: "${'x'.repeat(40)}"`],
    [`${ID} "${long}"`, `expected ";", found "${'x'.repeat(40)}"`],
  ])('refuses %j: %s', (value, message) => {
    expect(() => parseAuthResults(value)).toThrow(
      expect.objectContaining({ name: 'AuthResultsSyntaxError', code: 'auth_results_syntax', message }),
    );
  });

  it('keeps an escaped parenthesis inside a comment: text a sender put there cannot end it and start a result', () => {
    // The MX writes the sender's HELO name into a comment; a `\\)` in it must not close the comment.
    const value = `${ID}; spf=none (helo x\\); dkim=pass header.d=example.com (y)) smtp.helo=x; dkim=fail header.d=example.com`;
    expect(parseAuthResults(value).results).toEqual([
      { method: 'spf', result: 'none', props: { 'smtp.helo': 'x' } },
      { method: 'dkim', result: 'fail', props: { 'header.d': 'example.com' } },
    ]);
    expect(check([ar(value)]).ok).toBe(false);
  });

  it('refuses an empty Microsoft header, and trailing words after its results', () => {
    expect(() => parseAuthResults('dkim=pass header.d=example.com foo=bar', 'microsoft365')).toThrow(
      expect.objectContaining({ message: 'not a property: "foo"' }),
    );
    expect(() => parseAuthResults('', 'microsoft365')).toThrow(expect.objectContaining({ message: 'an empty header' }));
    expect(() => parseAuthResults('  (only a comment) ', 'microsoft365')).toThrow(expect.objectContaining({ message: 'an empty header' }));
    expect(() => parseAuthResults('; dkim=pass', 'microsoft365')).toThrow(
      expect.objectContaining({ message: 'expected a word, found ";"' }),
    );
  });
});

describe('parseAuthResults readings', () => {
  it('reads a method version, an authres-version, case, comments anywhere, and a trailing ";"', () => {
    expect(parseAuthResults(`(first) "MX.Ops.Example.NET" 1 (v); DKIM/1 = PASS (c) Header.D = "Example.COM" ;`)).toEqual({
      authservId: ID,
      results: [{ method: 'dkim', result: 'pass', props: { 'header.d': 'example.com' } }],
    });
    expect(parseAuthResults(`${ID}; spf=pass smtp.mailfrom=a@b.example; `).results).toHaveLength(1);
    expect(parseAuthResults(`${ID} 2; none`)).toEqual({ authservId: ID, results: [] });
    expect(parseAuthResults(`${ID};none`).results).toEqual([]);
    expect(parseAuthResults(`${ID}; none=pass`).results).toEqual([{ method: 'none', result: 'pass', props: {} }]);
    expect(parseAuthResults(`${ID}; dkim=pass header.d=example.com;`).results).toEqual([
      { method: 'dkim', result: 'pass', props: { 'header.d': 'example.com' } },
    ]);
  });

  it('takes a quoted local part and its domain together only when the domain follows at once', () => {
    expect(parseAuthResults(`${ID}; spf=pass smtp.mailfrom="a b"@example.com`).results[0].props['smtp.mailfrom']).toBe('a b@example.com');
    expect(parseAuthResults(`${ID}; spf=pass smtp.mailfrom=a@example.com`).results[0].props['smtp.mailfrom']).toBe('a@example.com');
    expect(() => parseAuthResults(`${ID}; spf=pass smtp.mailfrom=x @example.com`)).toThrow(
      expect.objectContaining({ message: 'not a property: "@example.com"' }),
    );
    expect(parseAuthResults(`${ID}; dkim=fail reason="a\\"b" header.d="x.example"`).results[0].props).toEqual({
      reason: 'a"b',
      'header.d': 'x.example',
    });
  });

  it('reads Microsoft\'s form with a trailing ";" and its action property', () => {
    expect(parseAuthResults('dkim=pass header.d=example.com;', 'microsoft365').results).toEqual([
      { method: 'dkim', result: 'pass', props: { 'header.d': 'example.com' } },
    ]);
    expect(parseAuthResults('none', 'microsoft365').results).toEqual([]);
    expect(parseAuthResults('dmarc=pass action=none', 'microsoft365').results[0].props).toEqual({ action: 'none' });
  });

  it('finds the authserv-id of a header it cannot parse, past leading comments', () => {
    expect(leadingAuthservId('  (c (n)) "Quoted ID"; x')).toBe('quoted id');
    expect(leadingAuthservId(' MX.Example.COM; dkim=pass')).toBe('mx.example.com');
    expect(leadingAuthservId('mx.example.com(comment); dkim=pass')).toBe('mx.example.com');
    expect(leadingAuthservId('a\\b;')).toBe('a');
    expect(leadingAuthservId('(unclosed')).toBe('');
    expect(leadingAuthservId('"unclosed')).toBe('');
    expect(leadingAuthservId('')).toBe('');
  });
});
