import { checkMessage, MAX_RESULT_BYTES, splitAgentMessage, truncateResult } from '../../cloud/lifecycle/job-text';
import { hashToken, newToken, tokenMatches } from '../../cloud/accounts/tokens';
import { isJobId, newJobId } from '../../cloud/lifecycle/job-id';
import { isDependencyError, toSkadiError } from '../../cloud/errors';

describe('job text', () => {
  it('splits "<agent> <job>"', () => {
    expect(splitAgentMessage('web1 restart nginx')).toEqual({ agent: 'web1', message: 'restart nginx' });
    expect(splitAgentMessage('  web1   df -h \n')).toEqual({ agent: 'web1', message: 'df -h' });
    expect(() => splitAgentMessage('web1')).toThrow(/<agent> <job text>/);
  });

  it('limits messages to 4096 characters', () => {
    expect(checkMessage('x'.repeat(4096))).toHaveLength(4096);
    expect(() => checkMessage('x'.repeat(4097))).toThrow(expect.objectContaining({ code: 'MessageTooLong', status: 400 }));
    expect(() => checkMessage('   ')).toThrow(expect.objectContaining({ code: 'InvalidMessage' }));
  });

  it('truncates results with a visible marker, on a character boundary', () => {
    const long = 'é'.repeat(MAX_RESULT_BYTES); // 2 bytes each
    const cut = truncateResult(long);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(MAX_RESULT_BYTES);
    expect(cut).toMatch(/…\[truncated: \d+ bytes omitted\]$/);
    expect(cut).not.toContain('\uFFFD');
    expect(truncateResult('short')).toBe('short');
  });
});

describe('tokens and ids', () => {
  it('stores only a hash and compares it', () => {
    const token = newToken('agent');
    expect(token).toMatch(/^ska_[\w-]{32}$/);
    expect(hashToken(token)).toHaveLength(64);
    expect(tokenMatches(token, hashToken(token))).toBe(true);
    expect(tokenMatches(token + 'x', hashToken(token))).toBe(false);
  });

  it('makes sortable, URL-safe job ids', () => {
    const ids = Array.from({ length: 100 }, () => newJobId());
    expect([...ids].sort()).toEqual(ids);
    expect(ids.every(isJobId)).toBe(true);
    expect(isJobId('../../etc/passwd')).toBe(false);
  });
});

describe('dependency errors', () => {
  it('maps connection failures to 503 and leaves bugs alone', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(isDependencyError(refused)).toBe(true);
    expect(toSkadiError(new Error("Stream isn't writeable and enableOfflineQueue options is false"))?.status).toBe(503);
    expect(toSkadiError(new TypeError('x is undefined'))).toBeNull();
  });
});
