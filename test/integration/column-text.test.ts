/**
 * Texts from platforms longer than their columns, on the real database: each is cut to its column (between code
 * points), an over-long key keeps a hash of the whole so that two keys stay two, and nothing fails with "Data too long".
 */
import type { InboundMessage } from '../../adapters/contract';
import type { Core } from '../../cloud/core';
import { identityCredential } from '../../cloud/approvals/credentials';
import { identityKey } from '../../cloud/accounts/identities';
import { IdentityRepo } from '../../cloud/store/identities';
import { dropNamespace, openCore, testConfig, uniqueName, userWithAgent } from '../helpers/env';

const name = uniqueName();
let core: Core;
beforeAll(async () => {
  core = await openCore(testConfig(name));
});
afterAll(async () => {
  await core.close();
  await dropNamespace(name);
});

/** An e-mail sender (the tenant is the domain, the account the address). */
function mail(domain: string, address: string, senderName: string): InboundMessage {
  return {
    channel: 'email',
    tenant: domain,
    senderId: address,
    senderName,
    text: 'status',
    isPrivate: true,
    replyTo: '{}',
    messageId: `m-${Math.random()}`,
    receivedAt: new Date(),
  };
}

/** A text of `count` characters where every second one is outside the BMP (a surrogate pair in JavaScript). */
const emojis = (count: number) => Array.from({ length: count }, (_, i) => (i % 2 ? '😀' : 'a')).join('');

async function identityRow(id: number): Promise<Record<string, any>> {
  const [rows] = await core.db.pool.query('SELECT * FROM identities WHERE id = ?', [id]);
  return (rows as Record<string, any>[])[0];
}

async function jobRow(id: string): Promise<Record<string, any>> {
  const [rows] = await core.db.pool.query('SELECT * FROM jobs WHERE id = ?', [id]);
  return (rows as Record<string, any>[])[0];
}

describe('platform texts longer than their columns', () => {
  it('keeps a long mail display name to 190 characters, cut between code points, and the sender acts', async () => {
    const { user } = await userWithAgent(core, 'mailer', 'm1');
    await core.identities.link('email:example.com:ops@example.com', 'mailer');
    const check = await core.identities.check(mail('example.com', 'ops@example.com', emojis(256)), { mode: 'closed', tenants: [] });
    expect('user' in check && check.user.id).toBe(user.id);
    const stored = String((await identityRow('identity' in check ? check.identity.id : 0)).display_name);
    expect([...stored]).toHaveLength(190);
    expect(stored).toBe(emojis(190));
    expect(stored).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
  });

  it('links, finds and unlinks a mail identity whose domain and address are longer than their columns', async () => {
    await userWithAgent(core, 'longmail', 'l1');
    const domain = `${'sub.'.repeat(60)}example.com`; // 251 characters, the tenant column holds 128
    const address = `${'x'.repeat(64)}@${domain}`;
    const twin = `${'x'.repeat(64)}@${domain.replace('example.com', 'example.org')}`; // the same first 190 characters
    await core.identities.link(`email:${domain}:${address}`, 'longmail', emojis(300));
    const check = await core.identities.check(mail(domain, address, 'Ops'), { mode: 'closed', tenants: [] });
    expect('user' in check && check.user.name).toBe('longmail');
    const row = await identityRow('identity' in check ? check.identity.id : 0);
    expect([...row.tenant].length).toBeLessThanOrEqual(128);
    expect([...row.external_id].length).toBeLessThanOrEqual(190);
    // The key the refusal and `identity list` show is the stored one, and the CLI finds the identity by it.
    expect(identityKey('email', domain, address)).toBe(`email:${row.tenant}:${row.external_id}`);
    const other = await core.identities.check(mail(domain, twin, 'Eve'), { mode: 'closed', tenants: [] });
    expect(other).toEqual({ refusal: expect.stringContaining(identityKey('email', domain, twin)) });
    await core.identities.unlink(`email:${row.tenant}:${row.external_id}`);
    expect('refusal' in (await core.identities.check(mail(domain, address, 'Ops'), { mode: 'closed', tenants: [] }))).toBe(true);
  });

  it('stores a job whose requester, source, approver, denier and reason are longer than their columns', async () => {
    const { user, agent } = await userWithAgent(core, 'gated', 'g1');
    const gated = await core.agents.setApprovalPatterns(user.id, agent.name, ['deploy *']);
    await core.agents.recordPoll(gated, '127.0.0.1');
    const requester = `teams:${'t'.repeat(20)}:${emojis(500)}`;
    const first = await core.jobs.push(gated, 'deploy web', { source: emojis(100), requester, pushedBy: identityCredential(1) });
    const asked = await jobRow(first.id);
    expect([...asked.source]).toHaveLength(64);
    expect([...asked.requester]).toHaveLength(400);
    const approver = `slack:T1:${'b'.repeat(600)}`;
    await core.approvals.approve(first.id, { userId: user.id, credential: identityCredential(2), via: 'chat', label: approver });
    expect((await jobRow(first.id)).approved_by).toBe(approver.slice(0, 400));
    const second = await core.jobs.push(gated, 'deploy db', { source: 'teams', requester, pushedBy: identityCredential(1) });
    await core.approvals.deny(
      second.id,
      { userId: user.id, credential: identityCredential(2), via: 'chat', label: approver },
      emojis(1000),
    );
    const denied = await jobRow(second.id);
    expect(denied.status).toBe('canceled');
    expect(denied.denied_by).toBe(approver.slice(0, 400));
    expect([...denied.reason]).toHaveLength(255);
    const delayed = await core.jobs.delay(gated, 'uptime', 3_600_000, { source: emojis(100), requester });
    const [rows] = await core.db.pool.query('SELECT source, requester FROM delayed_jobs WHERE id = ?', [delayed.id]);
    const stored = (rows as Record<string, any>[])[0];
    expect([...stored.source]).toHaveLength(64);
    expect([...stored.requester]).toHaveLength(400);
  });

  it('records a message id longer than its column, or not ASCII, once each', async () => {
    const long = `event:${'e'.repeat(300)}`;
    const identities = new IdentityRepo(core.db.pool);
    expect(await identities.markProcessed('slack', long, new Date())).toBe(true);
    expect(await identities.markProcessed('slack', long, new Date())).toBe(false);
    expect(await identities.markProcessed('slack', `${long}x`, new Date())).toBe(true);
    expect(await identities.markProcessed('wechat', 'bot:消息-1', new Date())).toBe(true);
    expect(await identities.markProcessed('wechat', 'bot:消息-1', new Date())).toBe(false);
  });
});
