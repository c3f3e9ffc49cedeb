/** Who is behind a credential, for the two-person rule. */
import {
  agentCredential,
  CLI_CREDENTIAL,
  holderUnknown,
  identityCredential,
  sameHolder,
  UNKNOWN_HOLDER,
  userTokenCredential,
} from '../../cloud/approvals/credentials';

describe('credentials', () => {
  const hash = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';

  it('name what pushed a job', () => {
    expect(identityCredential(7)).toEqual({ id: 'identity:7', identityId: 7 });
    expect(userTokenCredential({ tokenHash: hash, tokenIssuedTo: 7 })).toEqual({ id: 'user-token:a1b2c3d4e5f60718', identityId: 7 });
    expect(userTokenCredential({ tokenHash: hash, tokenIssuedTo: null })).toEqual({ id: 'user-token:a1b2c3d4e5f60718', identityId: null });
    expect(agentCredential({ id: 3, tokenIssuedTo: 9 })).toEqual({ id: 'agent:3', identityId: 9 });
    expect(CLI_CREDENTIAL).toEqual({ id: 'cli', identityId: null });
  });

  it('are the same holder when they are the same credential, or held by the same known person', () => {
    expect(sameHolder(identityCredential(7), identityCredential(7))).toBe(true);
    expect(sameHolder(identityCredential(7), userTokenCredential({ tokenHash: hash, tokenIssuedTo: 7 }))).toBe(true);
    expect(sameHolder(agentCredential({ id: 3, tokenIssuedTo: 7 }), identityCredential(7))).toBe(true);
    expect(
      sameHolder(
        userTokenCredential({ tokenHash: hash, tokenIssuedTo: null }),
        userTokenCredential({ tokenHash: hash, tokenIssuedTo: null }),
      ),
    ).toBe(true);
    expect(sameHolder(CLI_CREDENTIAL, CLI_CREDENTIAL)).toBe(true);
  });

  it('are different holders otherwise: nobody known is nobody in particular', () => {
    expect(sameHolder(identityCredential(7), identityCredential(8))).toBe(false);
    expect(sameHolder(CLI_CREDENTIAL, userTokenCredential({ tokenHash: hash, tokenIssuedTo: null }))).toBe(false);
    expect(sameHolder(agentCredential({ id: 3, tokenIssuedTo: null }), agentCredential({ id: 4, tokenIssuedTo: null }))).toBe(false);
    expect(sameHolder(userTokenCredential({ tokenHash: hash, tokenIssuedTo: null }), identityCredential(7))).toBe(false);
    expect(sameHolder(identityCredential(7), userTokenCredential({ tokenHash: hash.replace('a1', 'ff'), tokenIssuedTo: 8 }))).toBe(false);
  });

  it('mark tokens from before holders were recorded', () => {
    expect(UNKNOWN_HOLDER).toBe(0);
    expect(holderUnknown(agentCredential({ id: 3, tokenIssuedTo: UNKNOWN_HOLDER }))).toBe(true);
    expect(holderUnknown(agentCredential({ id: 3, tokenIssuedTo: null }))).toBe(false);
    expect(holderUnknown(identityCredential(1))).toBe(false);
    expect(holderUnknown(CLI_CREDENTIAL)).toBe(false);
  });
});
