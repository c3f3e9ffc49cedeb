/** The Teams adapter's diversion of botbuilder's console output: to the adapter's logger at debug level, without key material. */
import { Writable } from 'node:stream';
import pino from 'pino';
import { withoutKeyMaterial, withSdkLogger } from '../../adapters/teams/sdk-console';

const PEM =
  '-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u\n-----END PUBLIC KEY-----';
const JWT = 'eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9.eyJzZXJ2aWNldXJsIjoiaHR0cHM6Ly9zbWJhIn0.c2lnbmF0dXJlLXBhcnQtb2YtdGhlLXRva2Vu';

describe('withoutKeyMaterial', () => {
  it('removes PEM blocks and JWTs and keeps the rest', () => {
    expect(withoutKeyMaterial(`Error: invalid signature with key ${PEM} (kid 123)`)).toBe(
      'Error: invalid signature with key [key] (kid 123)',
    );
    expect(withoutKeyMaterial(`Authorization: Bearer ${JWT} refused`)).toBe('Authorization: Bearer [token] refused');
    expect(withoutKeyMaterial('JwtTokenExtractor.getIdentity:err! eyJ short')).toBe('JwtTokenExtractor.getIdentity:err! eyJ short');
  });
});

describe('withSdkLogger', () => {
  const saved = { error: console.error, warn: console.warn, log: console.log, info: console.info, debug: console.debug };
  const original = jest.fn();
  let lines: Array<Record<string, unknown>>;
  const sink = new Writable({ write: (chunk, _, done) => (lines.push(JSON.parse(String(chunk))), done()) });
  const log = pino({ level: 'debug' }, sink);

  // The module wraps console's methods once, on first use: what it wraps must be the spy.
  beforeAll(() => {
    console.error = original;
  });
  beforeEach(() => {
    lines = [];
    original.mockClear();
  });
  afterAll(() => Object.assign(console, saved));

  it("sends console.error inside fn to the logger at debug level, without key material, and returns fn's result", () => {
    const result = withSdkLogger(log, () => {
      console.error('JwtTokenExtractor.getIdentity:err!', new Error(`invalid signature ${PEM} token ${JWT}`).message);
      return 42;
    });
    expect(result).toBe(42);
    expect(original).not.toHaveBeenCalled();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 20,
      part: 'botbuilder',
      msg: 'JwtTokenExtractor.getIdentity:err! invalid signature [key] token [token]',
    });
    expect(JSON.stringify(lines)).not.toMatch(/BEGIN PUBLIC KEY|eyJhbGci/);
  });

  it('keeps diverting across awaits inside fn', async () => {
    await withSdkLogger(log, async () => {
      await new Promise((r) => setImmediate(r));
      console.error('after a tick');
    });
    expect(lines.map((l) => l.msg)).toEqual(['after a tick']);
    expect(original).not.toHaveBeenCalled();
  });

  it('leaves console.error outside fn alone', () => {
    withSdkLogger(log, () => undefined);
    console.error('the gateway itself', 7);
    expect(original).toHaveBeenCalledWith('the gateway itself', 7);
    expect(lines).toHaveLength(0);
  });
});
