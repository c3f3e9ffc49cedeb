/** Access policies and identity links on the real database. */
import type { InboundMessage } from '../../adapters/contract';
import type { Core } from '../../cloud/core';
import { identityCredential } from '../../cloud/approvals/credentials';
import { parseIdentityKey } from '../../cloud/accounts/identities';
import { createHeldAdapter } from '../helpers/held-adapter';
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
  return {
    channel: 'slack',
    tenant,
    senderId: sender,
    senderName: sender,
    text: 'status',
    isPrivate: false,
    replyTo: '{}',
    messageId: `m-${Math.random()}`,
    receivedAt: new Date(),
  };
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

  it("applies the current policy to links it made itself, never to an admin's links", async () => {
    const open = { mode: 'open' as const, tenants: [] };
    const first = await core.identities.check(from('TAUTO', 'UAUTO'), open);
    expect('identity' in first && first.identity.automatic).toBe(true);
    // The node restarts with a stricter policy: the automatic link no longer lets the sender in.
    expect(await core.identities.check(from('TAUTO', 'UAUTO'), { mode: 'closed', tenants: [] })).toEqual({
      refusal: expect.stringContaining('not linked'),
    });
    expect(await core.identities.check(from('TAUTO', 'UAUTO'), { mode: 'workspace', tenants: ['TOTHER'] })).toEqual({
      refusal: expect.stringContaining('TAUTO'),
    });
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

describe('identity keys', () => {
  const closed = { mode: 'closed' as const, tenants: [] };
  const mail = (tenant: string, sender: string): InboundMessage => ({ ...from(tenant, sender), channel: 'email' });

  it('stores an e-mail identity lower-cased, so any spelling of the same address finds the same row', async () => {
    const linked = await core.identities.link('email:EXAMPLE.COM:Alice@Example.com', 'ops');
    expect(linked).toMatchObject({ tenant: 'example.com', externalId: 'alice@example.com' });
    const found = await core.identities.check(mail('Example.Com', 'ALICE@example.COM'), closed);
    expect('identity' in found && found.identity.id).toBe(linked.id);
    const { channel, tenant, externalId } = parseIdentityKey('email:example.COM:alice@EXAMPLE.com');
    expect((await core.identityRepo.find(channel, tenant, externalId))?.id).toBe(linked.id);
  });

  it('compares keys byte for byte: an accented or differently cased id is another account', async () => {
    const alice = await core.identities.link('email:example.org:alice@example.org', 'ops');
    for (const other of ['alicé@example.org', 'alice\u0301@example.org', 'ålice@example.org']) {
      expect(await core.identityRepo.find('email', 'example.org', other)).toBeNull();
      expect(await core.identities.check(mail('example.org', other), closed)).toEqual({ refusal: expect.stringContaining('not linked') });
    }
    // The two spellings of é (one code point, or e and a combining accent) are one address.
    const composed = await core.identities.link('email:example.org:bé@example.org', 'ops');
    expect((await core.identities.link('email:example.org:be\u0301@example.org', 'ops')).id).toBe(composed.id);
    // Chat ids keep their case: U1 and u1 are two Slack accounts.
    const upper = await core.identities.link('slack:TCASE:UCASE', 'ops');
    expect(await core.identityRepo.find('slack', 'TCASE', 'ucase')).toBeNull();
    expect(await core.identityRepo.find('slack', 'tcase', 'UCASE')).toBeNull();
    expect(alice.id).not.toBe(upper.id);
  });

  it('refuses an approval by the asker under another spelling of her address (row ids are compared)', async () => {
    const owner = await core.users.create('mailers');
    const alice = await core.identities.link('email:mail.example:alice@mail.example', 'mailers');
    const { agent } = await core.agents.create(owner.user.id, 'web1');
    await core.agents.setApprovalPatterns(owner.user.id, 'web1', ['deploy *']);
    const { id } = await core.jobs.push((await core.agents.find(owner.user.id, 'web1'))!, 'deploy prod', {
      source: 'email',
      pushedBy: identityCredential(alice.id),
    });
    expect(agent.name).toBe('web1');
    // As `skadi job approve --as` resolves an account:
    const key = parseIdentityKey('email:MAIL.EXAMPLE:Alice@Mail.Example');
    const as = (await core.identityRepo.find(key.channel, key.tenant, key.externalId))!;
    expect(as.id).toBe(alice.id);
    await expect(
      core.approvals.approve(id, { userId: owner.user.id, credential: identityCredential(as.id), via: 'cli', label: 'cli' }),
    ).rejects.toMatchObject({ code: 'SelfApproval' });
    expect((await core.jobs.get(id, null)).status).toBe('awaiting_approval');
  });
});

describe('inbound de-duplication', () => {
  it('handles a message again when checking its sender failed (it is not left recorded as processed), and only once after that', async () => {
    await core.users.create('carols');
    await core.identities.link('email:example.net:carol@example.net', 'carols');
    const adapter = createHeldAdapter('email');
    adapter.release();
    const handle = core.chatHandler(adapter);
    const message: InboundMessage = {
      channel: 'email',
      tenant: 'example.net',
      senderId: 'carol@example.net',
      senderName: 'Carol',
      text: 'status',
      isPrivate: true,
      replyTo: 'carol-thread',
      messageId: `mid-${Math.random()}`,
      dedupKeys: [`sig-${Math.random()}`],
      receivedAt: new Date(),
    };
    const check = core.identities.check;
    core.identities.check = async () => {
      throw new Error('MySQL went away');
    };
    try {
      await expect(handle(message)).rejects.toThrow('MySQL went away');
    } finally {
      core.identities.check = check;
    }
    expect(adapter.sent).toEqual([]);
    await handle(message);
    expect(adapter.sent).toEqual([{ ref: 'carol-thread', text: expect.stringContaining('You have no agents yet') }]);
    await handle(message);
    await handle({ ...message, messageId: `mid-${Math.random()}` }); // a copy with a new Message-ID but the same signature
    expect(adapter.sent).toHaveLength(1);
  });
});
