/** The Teams adapter's outbound side: markdown rendering with the output cut by UTF-8 bytes, and Bot Connector error translation. */
import { AdapterError } from '../../adapters/contract';
import { MAX_CODE_BYTES, renderActivity, renderText, translateTeamsError } from '../../adapters/teams/outbound';

/** The content of the code block of a rendered text. */
const blockOf = (text: string) => /```\n([\s\S]*)\n```/.exec(text)![1];

/** An error shaped like the Bot Connector client's RestError. */
function connectorError(
  statusCode: number,
  headers: Record<string, string> = {},
  message = `Operation returned an invalid status code ${statusCode}`,
) {
  return Object.assign(new Error(message), { statusCode, response: { headers: { get: (name: string) => headers[name.toLowerCase()] } } });
}

describe('Teams renderText / renderActivity', () => {
  it('sends the plain line alone, and output in a code block', () => {
    expect(renderText({ text: 'web1: done' })).toBe('web1: done');
    expect(renderActivity({ text: 'web1 uptime', code: ' 10:00 up 3 days\n\n' })).toEqual({
      type: 'message',
      textFormat: 'markdown',
      text: 'web1 uptime\n\n```\n 10:00 up 3 days\n```',
    });
  });

  it('cannot be closed early by ``` in the output', () => {
    const text = renderText({ text: 'cat README', code: 'a\n```\nb' });
    expect(text.match(/```/g)).toHaveLength(2);
    expect(text).toContain('a\n`\u200b``\nb');
  });

  it('keeps the last MAX_CODE_BYTES bytes of long output and says so', () => {
    const code = 'HEAD' + 'x'.repeat(MAX_CODE_BYTES + 500) + 'TAIL';
    const text = renderText({ text: 'web1 log', code });
    const block = blockOf(text);
    expect(Buffer.byteLength(block)).toBe(MAX_CODE_BYTES);
    expect(block.endsWith('TAIL')).toBe(true);
    expect(text).not.toContain('HEAD');
    expect(text).toContain(`_Output cut: the last ${MAX_CODE_BYTES} of ${MAX_CODE_BYTES + 508} bytes are shown._`);
    expect(renderText({ text: 'ok', code: 'x'.repeat(MAX_CODE_BYTES) })).not.toContain('Output cut');
  });

  it('does not break a multi-byte character at the cut', () => {
    const code = 'é'.repeat(MAX_CODE_BYTES) + '€'; // 2 bytes each, then 3: the cut lands inside an é
    const block = blockOf(renderText({ text: 'x', code }));
    expect(block).not.toContain('\uFFFD');
    expect(block.endsWith('é€')).toBe(true);
    expect(Buffer.byteLength(block)).toBeLessThanOrEqual(MAX_CODE_BYTES);
    expect(Buffer.byteLength(block)).toBeGreaterThan(MAX_CODE_BYTES - 4);
  });
});

describe('translateTeamsError', () => {
  const translated = (err: unknown) => {
    const e = translateTeamsError(err);
    expect(e).toBeInstanceOf(AdapterError);
    return e;
  };

  it('reads 429 Retry-After as seconds or as an HTTP date', () => {
    const seconds = translated(connectorError(429, { 'retry-after': '3' }));
    expect(seconds).toMatchObject({ code: 'rate_limited', retryAfterMs: 3000, retryable: true });
    const now = Date.parse('2026-11-29T06:00:00Z');
    const clock = jest.spyOn(Date, 'now').mockReturnValue(now);
    try {
      const date = translated(connectorError(429, { 'retry-after': new Date(now + 7000).toUTCString() }));
      expect(date).toMatchObject({ code: 'rate_limited', retryAfterMs: 7000 });
    } finally {
      clock.mockRestore();
    }
    expect(translated(connectorError(429)).retryAfterMs).toBe(1000);
  });

  it.each([412, 500, 502, 503, 504])('%i is transient and retryable', (status) => {
    expect(translated(connectorError(status))).toMatchObject({ code: 'transient', retryable: true });
  });

  it.each([
    [401, 'unauthorized'],
    [403, 'unauthorized'],
    [404, 'not_found'],
    [400, 'invalid'],
    [413, 'invalid'],
  ])('%i is %s and not retryable', (status, code) => {
    const e = translated(connectorError(status, {}, 'Bad request: the activity is malformed\nat stack'));
    expect(e).toMatchObject({ code, retryable: false });
    expect(e.message).not.toContain('at stack');
  });

  it('takes a refused client secret from the login library as unauthorized', () => {
    const msal = Object.assign(new Error('invalid_client: AADSTS7000215: Invalid client secret provided.'), {
      errorCode: 'invalid_client',
    });
    expect(translated(msal)).toMatchObject({ code: 'unauthorized', retryable: false });
    expect(translated(new Error('AADSTS700016: Application not found in the directory'))).toMatchObject({ code: 'unauthorized' });
  });

  it('takes a network failure as transient, and passes an AdapterError through', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(translated(reset)).toMatchObject({ code: 'transient', retryable: true });
    const own = new AdapterError('not_found', 'gone');
    expect(translateTeamsError(own)).toBe(own);
  });
});
