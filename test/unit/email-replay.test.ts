/**
 * Replays of signed mail, on mail signed with a real DKIM key: a copy with a new Message-ID has the same signature
 * key, and mail too old (Date:, t=), expired (x=) or dated ahead is refused.
 */
import { simpleParser } from 'mailparser';
import { DEDUP_RETENTION_MS } from '../../adapters/contract';
import { normalizeMail } from '../../adapters/email/inbound';
import { dkimTags, MAX_AGE_MS, MAX_FUTURE_MS, passingSignatures, replayProblem, signatureKeys } from '../../adapters/email/replay';
import { dkimKey, signMail, type DkimKey } from '../helpers/border-mx';
import { rawMail } from '../helpers/mail';

const ID = 'mx.ops.example.net';
const config = { from: 'skadi@ops.example.net', authservId: ID, authFormat: 'rfc8601' as const, require: 'dkim' as const };
const HOUR_MS = 3_600_000;
let key: DkimKey;

beforeAll(() => {
  key = dkimKey('example.com');
});

/** alice's mail signed at `when`, with the MX's pass (naming the signature by its first 8 b= characters) on top. */
async function signedMail(options: { when?: Date; messageId?: string; expires?: Date; headerList?: string[] } = {}): Promise<string> {
  const when = options.when ?? new Date();
  const raw = rawMail({
    from: 'alice@example.com',
    to: 'skadi@ops.example.net',
    subject: 'web1 uptime',
    text: 'hi\n',
    date: when,
    messageId: options.messageId,
  });
  const signed = await signMail(raw, key, { signTime: when, expires: options.expires, headerList: options.headerList });
  const b = dkimTags(signed.slice(0, signed.indexOf('\r\n', signed.indexOf(' b=')) + 200)).b.slice(0, 8);
  return `Authentication-Results: ${ID}; dkim=pass header.d=example.com header.s=sel header.b=${b}\r\n${signed}`;
}

const verdictOf = async (raw: string, now = new Date()) => normalizeMail(await simpleParser(raw), config, now);

describe('replays of signed mail', () => {
  it('keys a signed mail by its signature too: a copy with another Message-ID has the same key', async () => {
    const original = await signedMail({ messageId: '<one@example.com>' });
    const copy = original.replace('<one@example.com>', '<two@example.com>');
    const [a, b] = [await verdictOf(original), await verdictOf(copy)];
    if (!('message' in a) || !('message' in b)) throw new Error(JSON.stringify([a, b]));
    expect(a.message.messageId).not.toBe(b.message.messageId);
    expect(a.message.dedupKeys).toEqual([expect.stringMatching(/^dkim:[0-9a-f]{40}$/)]);
    expect(b.message.dedupKeys).toEqual(a.message.dedupKeys);
    const other = await verdictOf(await signedMail({ when: new Date(Date.now() - 60_000) })); // another mail (deterministic RSA: only what is signed differs)
    expect('message' in other && other.message.dedupKeys).not.toEqual(a.message.dedupKeys);
  });

  it('keys a signature by its bytes: changing the unused bits of its last base64 character keeps the key', () => {
    const b = Buffer.from('a two hundred and fifty-six byte signature, shortened: 31 bytes!').toString('base64');
    expect(b).toMatch(/Q==$/); // its last character before the padding carries 2 bits and 4 unused ones
    const last = b.length - 3;
    const altered = b.slice(0, last) + String.fromCharCode(b.charCodeAt(last) + 1) + b.slice(last + 1);
    expect(Buffer.from(altered, 'base64')).toEqual(Buffer.from(b, 'base64'));
    expect(signatureKeys([{ b: altered }])).toEqual(signatureKeys([{ b }]));
  });

  it('refuses a DKIM pass whose signature is not in the mail (its copies could not be told apart)', async () => {
    const signed = await signedMail();
    const elsewhere = signed.replace(/header\.b=[^\s;]+/, 'header.b=ZZZZZZZZ');
    expect(await verdictOf(elsewhere)).toEqual({ refused: expect.stringContaining('DKIM signature that passed is not among') });
    const stripped = signed.replace(/DKIM-Signature:[\s\S]*?\r\n(?=[^ \t])/i, '');
    expect(stripped).not.toMatch(/DKIM-Signature/i);
    expect(await verdictOf(stripped)).toEqual({ refused: expect.stringContaining('DKIM signature that passed is not among') });
  });

  it('takes the job an approve reply answers only from headers its signature covers', async () => {
    const request = '<skadi-approval.01KAAAAAAAAAAAAAAAAAAAAAAA.3f2c@ops.example.net>';
    const reply = async (headerList: string[]) => {
      const raw = rawMail({
        from: 'alice@example.com',
        to: 'skadi@ops.example.net',
        subject: 'Re: approval',
        text: 'approve\n',
        inReplyTo: request,
        references: [request],
      });
      const signed = await signMail(raw, key, { signTime: new Date(), headerList });
      const b = dkimTags(signed.slice(0, signed.indexOf('\r\n', signed.indexOf(' b=')) + 200)).b.slice(0, 8);
      const verdict = await verdictOf(
        `Authentication-Results: ${ID}; dkim=pass header.d=example.com header.s=sel header.b=${b}\r\n${signed}`,
      );
      if (!('message' in verdict)) throw new Error(JSON.stringify(verdict));
      return verdict.message.text;
    };
    expect(await reply(['From', 'To', 'Subject', 'Date', 'In-Reply-To', 'References'])).toBe('approve 01KAAAAAAAAAAAAAAAAAAAAAAA');
    expect(await reply(['From', 'To', 'Subject', 'Date', 'References'])).toBe('approve 01KAAAAAAAAAAAAAAAAAAAAAAA');
    // Neither header signed: whoever added them could aim the reply at any job, so it names none.
    expect(await reply(['From', 'To', 'Subject', 'Date'])).toBe('approve');
  });

  it('finds the signature when the MX names it by header.i of a subdomain', async () => {
    const signed = await signedMail();
    const byI = signed.replace(/header\.d=example\.com/, 'header.i=@mail.example.com');
    const verdict = await verdictOf(byI);
    expect('message' in verdict && verdict.message.dedupKeys).toHaveLength(1);
  });

  it.each([
    ['signed and dated 30 days ago', -30 * 24 * HOUR_MS, /older than/],
    ['signed and dated 24 hours ago', -24 * HOUR_MS, /older than/],
    ['signed and dated 2 hours ahead', 2 * HOUR_MS, /in the future/],
  ])('refuses a mail %s', async (_what, offsetMs, reason) => {
    const verdict = await verdictOf(await signedMail({ when: new Date(Date.now() + offsetMs) }));
    expect(verdict).toEqual({ refused: expect.stringMatching(reason) });
  });

  it('accepts one of 22 hours, and 50 minutes ahead (clock skew)', async () => {
    expect(await verdictOf(await signedMail({ when: new Date(Date.now() - 22 * HOUR_MS) }))).toHaveProperty('message');
    expect(await verdictOf(await signedMail({ when: new Date(Date.now() + 50 * 60_000) }))).toHaveProperty('message');
  });

  it('refuses an old signature on a fresh Date: (t=), and an expired one (x=)', async () => {
    const oldSignature = (await signedMail({ when: new Date(Date.now() - 30 * 24 * HOUR_MS) })).replace(
      /^Date: [^\r\n]*/m,
      `Date: ${new Date().toUTCString()}`,
    );
    expect(await verdictOf(oldSignature)).toEqual({ refused: expect.stringContaining('(t=)') });
    const expired = await signedMail({ expires: new Date(Date.now() + 60_000) });
    expect(await verdictOf(expired, new Date(Date.now() + 120_000))).toEqual({ refused: expect.stringContaining('expired (x=)') });
  });

  it('refuses a mail without a Date:, with two, or with one that cannot be read', async () => {
    const signed = await signedMail();
    expect(await verdictOf(signed.replace(/^Date: [^\r\n]*\r\n/m, ''))).toEqual({ refused: 'no Date: header' });
    expect(await verdictOf(signed.replace(/^(Date: [^\r\n]*\r\n)/m, '$1$1'))).toEqual({ refused: 'more than one Date: header' });
    expect(await verdictOf(signed.replace(/^Date: [^\r\n]*/m, 'Date: garbage'))).toEqual({ refused: 'an unreadable Date: header' });
  });

  it('keeps mail only within what the core remembers, with room for clock skew', () => {
    expect(MAX_AGE_MS + MAX_FUTURE_MS).toBeLessThanOrEqual(DEDUP_RETENTION_MS);
    const now = new Date();
    expect(replayProblem([new Date(now.getTime() - MAX_AGE_MS + 1000).toUTCString()], [], now)).toBeNull();
    expect(replayProblem([new Date(now.getTime() - MAX_AGE_MS - 1000).toUTCString()], [], now)).toMatch(/older than 23 h/);
    expect(replayProblem([now.toUTCString()], [{ d: 'example.com', b: 'x', h: 'from:subject' }], now)).toMatch(
      /no t= and does not sign Date:/,
    );
    expect(replayProblem([now.toUTCString()], [{ d: 'example.com', b: 'x', h: 'from:date' }], now)).toBeNull();
  });
});

describe('the parts of replay protection', () => {
  const pass = (props: Record<string, string>) => ({ method: 'dkim', result: 'pass', props });

  it('reads a DKIM tag list: names lower-cased, white space dropped from values, the first of a repeated tag kept', () => {
    expect(dkimTags(' v=1; A=rsa-sha256;\r\n\td=Example.com; b=abc\r\n\t def ==; h=From : Date; b=second; junk; =x; t= 12 ')).toEqual({
      v: '1',
      a: 'rsa-sha256',
      d: 'Example.com',
      b: 'abcdef==',
      h: 'From:Date',
      t: '12',
    });
    expect(dkimTags('')).toEqual({});
    expect(dkimTags('novalue;;')).toEqual({});
  });

  it('picks the DKIM-Signature headers a pass names: by domain (or a subdomain in header.i), and by the start of b=', () => {
    const headers = [
      { key: 'received', value: 'd=example.com; b=AAAA' },
      { key: 'dkim-signature', value: 'd=example.com; b=AbCd1234' },
      { key: 'dkim-signature', value: 'd=example.com; b=ZZZZ9999' },
      { key: 'dkim-signature', value: 'd=other.example; b=AbCd0000' },
      { key: 'dkim-signature', value: 'b=AbCd5555' },
    ];
    expect(passingSignatures(headers, [pass({ 'header.d': 'example.com', 'header.b': 'abcd' })]).map((t) => t.b)).toEqual(['AbCd1234']);
    expect(passingSignatures(headers, [pass({ 'header.d': 'EXAMPLE.com' })]).map((t) => t.b)).toEqual(['AbCd1234', 'ZZZZ9999']);
    expect(passingSignatures(headers, [pass({ 'header.i': '@mail.example.com' })]).map((t) => t.b)).toEqual(['AbCd1234', 'ZZZZ9999']);
    expect(passingSignatures(headers, [pass({ 'header.d': 'ample.com' })])).toEqual([]);
    expect(passingSignatures(headers, [pass({ 'header.i': 'alice@example.com', 'header.b': 'zzzz' })]).map((t) => t.b)).toEqual([
      'ZZZZ9999',
    ]);
    // Two passes: a signature counts when any one of them names it.
    expect(
      passingSignatures(headers, [pass({ 'header.d': 'other.example' }), pass({ 'header.d': 'example.com', 'header.b': 'zzzz' })]).map(
        (t) => t.b,
      ),
    ).toEqual(['ZZZZ9999', 'AbCd0000']);
    expect(passingSignatures(headers, [])).toEqual([]);
  });

  it('keys each distinct signature once, and a signature without b= not at all', () => {
    const keys = signatureKeys([{ b: 'AAAA' }, { b: 'AAAA' }, { b: 'BBBB' }, { d: 'example.com' }, { b: '' }]);
    expect(keys).toHaveLength(2);
    expect(keys.every((k) => /^dkim:[0-9a-f]{40}$/.test(k))).toBe(true);
    expect(signatureKeys([{ d: 'example.com' }])).toEqual([]);
  });

  it('draws the window at its edges: MAX_FUTURE_MS ahead and MAX_AGE_MS back still count', () => {
    const now = new Date(Date.UTC(2026, 5, 1, 12));
    const at = (ms: number) => [new Date(now.getTime() + ms).toUTCString()];
    expect(replayProblem(at(MAX_FUTURE_MS), [], now)).toBeNull();
    expect(replayProblem(at(MAX_FUTURE_MS + 1000), [], now)).toBe('the mail (Date:) lies in the future');
    expect(replayProblem(at(-MAX_AGE_MS), [], now)).toBeNull();
    expect(replayProblem(at(-MAX_AGE_MS - 1000), [], now)).toBe(
      'the mail (Date:) is older than 23 h (a replay is not told apart after that)',
    );
    const t = (ms: number) => String((now.getTime() + ms) / 1000);
    expect(replayProblem(at(0), [{ d: 'example.com', t: t(MAX_FUTURE_MS) }], now)).toBeNull();
    expect(replayProblem(at(0), [{ d: 'example.com', t: t(MAX_FUTURE_MS + 1000) }], now)).toBe(
      'the DKIM signature of example.com (t=) lies in the future',
    );
    expect(replayProblem(at(0), [{ d: 'example.com', t: t(-MAX_AGE_MS) }], now)).toBeNull();
    expect(replayProblem(at(0), [{ d: 'example.com', t: t(-MAX_AGE_MS - 1000) }], now)).toMatch(
      /^the DKIM signature of example.com \(t=\) is older than 23 h/,
    );
  });

  it('checks every signature the mail passed with, not only the first', () => {
    const now = new Date(Date.UTC(2026, 5, 1, 12));
    const fresh = { d: 'example.com', t: String(now.getTime() / 1000) };
    const old = { d: 'mail.example.com', t: String((now.getTime() - MAX_AGE_MS - 60_000) / 1000) };
    expect(replayProblem([now.toUTCString()], [fresh, fresh], now)).toBeNull();
    expect(replayProblem([now.toUTCString()], [fresh, old], now)).toMatch(/^the DKIM signature of mail.example.com \(t=\) is older than/);
  });

  it('reads t= and x= only as whole seconds', () => {
    const now = new Date(Date.UTC(2026, 5, 1, 12));
    const s = String(now.getTime() / 1000);
    for (const bad of [`${s}x`, `x${s}`, `-${s}`, `${s}.5`, '', '1234567890123']) {
      expect(replayProblem([now.toUTCString()], [{ d: 'example.com', t: bad, h: 'date' }], now)).toBe(
        'the DKIM signature of example.com has an unreadable t=',
      );
      expect(replayProblem([now.toUTCString()], [{ d: 'example.com', t: s, x: bad }], now)).toBe(
        'the DKIM signature of example.com has expired (x=)',
      );
    }
    expect(replayProblem([now.toUTCString()], [{ d: 'example.com', t: s, x: String(now.getTime() / 1000 + 60) }], now)).toBeNull();
    expect(replayProblem([now.toUTCString()], [{ d: 'example.com', t: s, x: String(now.getTime() / 1000 - 1) }], now)).toBe(
      'the DKIM signature of example.com has expired (x=)',
    );
    // Without t=, Date: must be among the signed headers (any case), or the signature's age is unknown.
    expect(replayProblem([now.toUTCString()], [{ d: 'example.com', h: 'From:DATE' }], now)).toBeNull();
    expect(replayProblem([now.toUTCString()], [{ d: 'example.com', h: 'from:dated' }], now)).toBe(
      'the DKIM signature of example.com has no t= and does not sign Date:',
    );
    expect(replayProblem([now.toUTCString()], [{ d: 'example.com' }], now)).toBe(
      'the DKIM signature of example.com has no t= and does not sign Date:',
    );
  });
});
