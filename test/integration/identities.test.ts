/** Access policies and identity links on the real database. */
import type { InboundMessage } from '../../adapters/contract';
import type { Core } from '../../cloud/core';
import { dropNamespace, openCore, testConfig, uniqueName } from '../helpers/env';

const name = uniqueName();
let core: Core;
beforeAll(async () => {
  core = await openCore(testConfig(name));
  await core.users.create('ops');
});
afterAll(async () => {
  await core.close();
  await dropNamespace(name);
});

function from(tenant: string, sender: string): InboundMessage {
  return { channel: 'slack', tenant, senderId: sender, senderName: sender, text: 'status', isPrivate: false, replyTo: '{}', messageId: `m-${Math.random()}`, receivedAt: new Date() };
}

describe('access policies', () => {
  it('closed: only linked identities act; others are told what to ask for', async () => {
    const refused = await core.identities.check(from('T1', 'U1'), { mode: 'closed', tenants: [] });
    expect(refused).toEqual({ refusal: expect.stringContaining('skadi identity link slack:T1:U1 --user <name>') });
    await core.identities.link('slack:T1:U1', 'ops');
    const accepted = await core.identities.check(from('T1', 'U1'), { mode: 'closed', tenants: [] });
    expect('user' in accepted && accepted.user.name).toBe('ops');
    await core.identities.unlink('slack:T1:U1');
    expect('refusal' in (await core.identities.check(from('T1', 'U1'), { mode: 'closed', tenants: [] }))).toBe(true);
  });

  it('workspace: every member of an allowed workspace acts as one shared user', async () => {
    const a = await core.identities.check(from('TWORK', 'UA'), { mode: 'workspace', tenants: ['TWORK'] });
    const b = await core.identities.check(from('TWORK', 'UB'), { mode: 'workspace', tenants: ['TWORK'] });
    expect('user' in a && 'user' in b && a.user.id === b.user.id).toBe(true);
    expect('user' in a && a.user.name).toBe('slack-TWORK');
    const other = await core.identities.check(from('TOTHER', 'UC'), { mode: 'workspace', tenants: ['TWORK'] });
    expect(other).toEqual({ refusal: expect.stringContaining('TOTHER') });
  });

  it('open: first contact creates a user for that identity', async () => {
    const a = await core.identities.check(from('T9', 'UX'), { mode: 'open', tenants: [] });
    const again = await core.identities.check(from('T9', 'UX'), { mode: 'open', tenants: [] });
    const b = await core.identities.check(from('T9', 'UY'), { mode: 'open', tenants: [] });
    expect('user' in a && 'user' in again && a.user.id === again.user.id).toBe(true);
    expect('user' in a && 'user' in b && a.user.id !== b.user.id).toBe(true);
  });

  it('applies the current policy to links it made itself, never to an admin\'s links', async () => {
    const open = { mode: 'open' as const, tenants: [] };
    const first = await core.identities.check(from('TAUTO', 'UAUTO'), open);
    expect('identity' in first && first.identity.automatic).toBe(true);
    // The node restarts with a stricter policy: the automatic link no longer lets the sender in.
    expect(await core.identities.check(from('TAUTO', 'UAUTO'), { mode: 'closed', tenants: [] })).toEqual({ refusal: expect.stringContaining('not linked') });
    expect(await core.identities.check(from('TAUTO', 'UAUTO'), { mode: 'workspace', tenants: ['TOTHER'] })).toEqual({ refusal: expect.stringContaining('TAUTO') });
    // Once an admin links it, it holds under any policy.
    await core.identities.link('slack:TAUTO:UAUTO', 'ops');
    const linked = await core.identities.check(from('TAUTO', 'UAUTO'), { mode: 'closed', tenants: [] });
    expect('user' in linked && linked.user.name).toBe('ops');
    expect('identity' in linked && linked.identity.automatic).toBe(false);
  });

  it('rejects malformed identity keys', async () => {
    await expect(core.identities.link('slack-T1-U1', 'ops')).rejects.toThrow(/channel:tenant:id/);
    await expect(core.identities.link('irc:x:y', 'ops')).rejects.toThrow(/Unknown channel/);
    await expect(core.identities.link('email::ops@example.com', 'nobody')).rejects.toMatchObject({ status: 404 });
    expect((await core.identities.link('email::ops@example.com', 'ops')).tenant).toBe('');
  });
});
