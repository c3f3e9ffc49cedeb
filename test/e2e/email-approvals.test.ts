/**
 * Two-person approval by e-mail: a real Dovecot mailbox (commands and replies enter with IMAP APPEND), a real
 * `skadi serve` and SDK agent, and an SMTP sink that catches the answers. An approval request's Message-ID names its
 * job, so a reply whose first line is only `approve` or `deny [reason]` decides on it.
 */
import { eventually } from '../helpers/env';
import { dovecotAvailable, startDovecot, type Dovecot } from '../helpers/dovecot';
import { authResults, rawMail } from '../helpers/mail';
import { startSmtpSink, type SinkMail, type SmtpSink } from '../helpers/smtp-sink';
import { startGateway, type Gateway, type RunningAgent } from '../helpers/gateway';
import { gateWeb1 } from '../helpers/approvals';

const AUTHSERV = 'mx.skadi.test';
const SKADI = 'skadi@ops.example.net';
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const ALICE_KEY = `email:example.com:${ALICE}`;
const BOB_KEY = `email:example.com:${BOB}`;
const run = dovecotAvailable() ? describe : describe.skip;

let dovecot: Dovecot;
let smtp: SmtpSink;
let gw: Gateway;
let agent: RunningAgent;
let seq = 0;
let ran: string[] = [];

/** A mail to the gateway, DKIM-signed by the sender's domain as the receiving server saw it, unless told otherwise. */
function mail(options: { from: string; subject: string; text?: string; inReplyTo?: string; references?: string[]; auth?: string[] }): {
  raw: string;
  messageId: string;
} {
  const messageId = `<appr-${++seq}-${Date.now()}@example.com>`;
  const auth = options.auth ?? [
    authResults(AUTHSERV, { dkim: 'pass', dkimDomain: options.from.split('@')[1], spf: 'pass', mailFrom: options.from }),
  ];
  const raw = rawMail({
    from: options.from,
    to: SKADI,
    subject: options.subject,
    text: options.text ?? '',
    messageId,
    inReplyTo: options.inReplyTo,
    references: options.references,
    authResults: auth,
  });
  return { raw, messageId };
}

/** Sends a mail into the mailbox and returns its Message-ID. */
async function deliver(options: Parameters<typeof mail>[0]): Promise<string> {
  const m = mail(options);
  await dovecot.append(m.raw);
  return m.messageId;
}

/** A reply to one of the gateway's mails, as a mail client writes it: `Re:` subject, threading headers, the answer on top of the quote. */
function replyTo(to: SinkMail, from: string, firstLine: string, auth?: string[]): Parameters<typeof mail>[0] {
  const quoted = to.text
    .trimEnd()
    .split('\n')
    .map((line) => `> ${line}`)
    .join('\n');
  return {
    from,
    subject: `Re: ${to.subject}`,
    text: `${firstLine}\n\nOn Tuesday, Skadi wrote:\n${quoted}\n`,
    inReplyTo: to.messageId,
    references: [...to.references, to.messageId],
    auth,
  };
}

/** The answers in the thread of one mail (by its Message-ID), in order. */
const answersTo = (messageId: string) => smtp.mails.filter((m) => m.inReplyTo === messageId);

/** The approval request in the thread of a command mail: the mail, the job and its short id. */
async function requestInThread(commandId: string, what: string): Promise<{ request: SinkMail; jobId: string; shortId: string }> {
  const request = await eventually(
    () => answersTo(commandId).find((m) => m.text.includes('Approval needed') && m.text.includes(what)),
    20_000,
    `the approval request for ${what} in the thread`,
  );
  const [, shortId] = /`approve ([0-9A-Z]{4})`/.exec(request.text) ?? [];
  const [, jobId] = /job ([0-9A-Z]{26})/.exec(request.text) ?? [];
  expect(shortId).toBeDefined();
  expect(jobId).toBeDefined();
  return { request, jobId, shortId };
}

/** The approval request mailed privately to an address (a new mail, not a reply). */
const privateRequest = (to: string, jobId: string) =>
  eventually(
    () => smtp.mails.find((m) => m.to.includes(to) && m.messageId.startsWith(`<skadi-approval.${jobId}.`) && !m.inReplyTo),
    20_000,
    `the private request of ${jobId} to ${to}`,
  );

/** Waits until the mailbox has marked a mail seen (handled, answered or not). */
const handled = (messageId: string) =>
  eventually(
    async () => (await dovecot.messages()).find((m) => m.messageId === messageId)?.flags.includes('\\Seen'),
    15_000,
    `${messageId} handled`,
  );

const status = async (jobId: string) => (await gw.core.jobs.get(jobId, null)).status;

/**
 * Mails a command of `from` for web1 and waits for its result. The mailbox hands one sender's mails on one at a time,
 * in the order they arrived, and the answers to one address go out in the order of their events: once the result is
 * in, every mail `from` sent before it has been handled, and every answer to that address before it has been sent.
 */
async function sentinel(from: string): Promise<void> {
  const command = await deliver({ from, subject: `web1 sentinel-${Math.random().toString(36).slice(2, 8)}` });
  await eventually(() => answersTo(command).some((m) => m.text.includes('— succeeded')), 20_000, 'the result of the sentinel');
}

beforeAll(async () => {
  if (!dovecotAvailable()) return;
  dovecot = await startDovecot();
  smtp = await startSmtpSink();
  gw = await startGateway({
    SKADI_EMAIL_IMAP_URL: dovecot.url,
    SKADI_EMAIL_SMTP_URL: smtp.url,
    SKADI_EMAIL_FROM: `Skadi <${SKADI}>`,
    SKADI_EMAIL_AUTHSERV_ID: AUTHSERV,
    SKADI_NOTIFY_PACE: '20ms',
  });
  ({ agent, ran } = await gateWeb1(gw, { alice: ALICE_KEY, bob: BOB_KEY }));
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await gw?.stop();
  await smtp?.close();
  await dovecot?.stop();
}, 60_000);

run('e-mail approvals', () => {
  it("a matching command waits; alice's own `approve` reply is refused; bob's reply to his request mail approves, and the result is a reply in alice's thread", async () => {
    const command = await deliver({ from: ALICE, subject: 'web1 deploy v1' });
    const { request, jobId, shortId } = await requestInThread(command, '`deploy v1`');
    expect(jobId.endsWith(shortId)).toBe(true);
    expect(await status(jobId)).toBe('awaiting_approval');

    // In alice's thread: a reply to her command, whose Message-ID names the job.
    expect(request.text.startsWith('🔐 Approval needed')).toBe(true);
    expect(request.text).toContain(`\`approve ${shortId}\``);
    expect(request.text).toContain(`\`deny ${shortId} [reason]\``);
    expect(request.text).toContain(`job ${jobId}`);
    expect(request.to).toEqual([ALICE]);
    expect(request.subject).toBe('Re: web1 deploy v1');
    expect(request.references).toEqual([command]);
    expect(request.messageId).toMatch(new RegExp(`^<skadi-approval\\.${jobId}\\.[0-9a-f-]{36}@ops\\.example\\.net>$`));

    // Bob, the other account of ops, gets a new mail with the request; alice gets none besides the one in her thread.
    const bobRequest = await privateRequest(BOB, jobId);
    expect(bobRequest.to).toEqual([BOB]);
    expect(bobRequest.text.startsWith('🔐 Approval needed')).toBe(true);
    expect(bobRequest.text).toContain(`job ${jobId}`);
    expect(bobRequest.references).toEqual([]);
    expect(bobRequest.messageId).not.toBe(request.messageId);
    await gw.notifierIdle(); // the request's delivery is over: a private copy to alice would have been sent by now
    expect(smtp.mails.filter((m) => m.to.includes(ALICE) && m.text.includes('Approval needed') && m.text.includes(jobId))).toEqual([
      request,
    ]);
    expect(ran).not.toContain('deploy v1');

    // Alice answers `approve` to the request in her own thread: refused, the job still waits.
    const selfReply = await deliver(replyTo(request, ALICE, 'approve'));
    const refusal = await eventually(() => answersTo(selfReply)[0], 20_000, "the answer to alice's own approval");
    expect(refusal.to).toEqual([ALICE]);
    expect(refusal.text).toContain('You asked for this job yourself');
    // The refusal is the last thing the gateway does with alice's reply, and a job still awaiting approval was never
    // handed out.
    expect(await status(jobId)).toBe('awaiting_approval');
    expect(ran).not.toContain('deploy v1');

    // Bob answers `approve` to his request mail: approved, answered in his thread, and the job runs.
    const bobReply = await deliver(replyTo(bobRequest, BOB, 'approve'));
    const approved = await eventually(() => answersTo(bobReply)[0], 20_000, "the answer to bob's approval");
    expect(approved.to).toEqual([BOB]);
    expect(approved.text).toContain(`✅ Approved: queued for web1 \`deploy v1\` · job ${jobId}`);

    // The result is a reply in alice's thread: In-Reply-To her command.
    const result = await eventually(
      () => answersTo(command).find((m) => m.text.includes('— succeeded')),
      20_000,
      "the result in alice's thread",
    );
    expect(result.to).toEqual([ALICE]);
    expect(result.subject).toBe('Re: web1 deploy v1');
    expect(result.references).toEqual([command]);
    expect(result.text).toContain(`✅ web1: \`deploy v1\` — succeeded · job ${jobId}`);
    expect(result.text).toContain('output of deploy v1');
    const job = await gw.core.jobs.get(jobId, null);
    expect(job.status).toBe('succeeded');
    expect(job.approval?.approvedBy).toBe(BOB_KEY);
    expect(ran.filter((m) => m === 'deploy v1')).toHaveLength(1);
    // Bob gets no result: it belongs to alice's thread.
    expect(smtp.mails.filter((m) => m.to.includes(BOB) && m.text.includes('succeeded'))).toEqual([]);

    // A second `approve` to the same request finds the job decided.
    const again = await deliver(replyTo(bobRequest, BOB, 'approve'));
    const late = await eventually(() => answersTo(again)[0], 20_000, 'the answer to a second approval');
    expect(late.text).toContain(`already approved by ${BOB_KEY}`);
  }, 90_000);

  it('a reply `deny not now` (naming the request in References only) cancels the job with the reason, and it never runs', async () => {
    const command = await deliver({ from: ALICE, subject: 'web1 deploy v2' });
    const { jobId } = await requestInThread(command, '`deploy v2`');
    const bobRequest = await privateRequest(BOB, jobId);
    // Some clients leave In-Reply-To out; the References header names the request too.
    const deny = { ...replyTo(bobRequest, BOB, 'deny not now'), inReplyTo: undefined };
    const bobReply = await deliver(deny);
    const denied = await eventually(() => answersTo(bobReply)[0], 20_000, 'the answer to the denial');
    expect(denied.to).toEqual([BOB]);
    expect(denied.text).toContain(`🚫 Denied: web1 \`deploy v2\` · job ${jobId}`);
    const job = await gw.core.jobs.get(jobId, null);
    expect(job.status).toBe('canceled');
    expect(job.reason).toBe(`denied by ${BOB_KEY}: not now`);
    expect(job.approval?.deniedBy).toBe(BOB_KEY);
    // Alice hears of it in her thread.
    const ended = await eventually(
      () => answersTo(command).find((m) => m.text.includes('— canceled')),
      20_000,
      "the cancellation in alice's thread",
    );
    expect(ended.text).toContain('not now');
    await gw.drainQueue(); // a later job of web1 has run: the denied one would have been handed out before it
    expect(ran).not.toContain('deploy v2');
  }, 60_000);

  it("bob's `deny not now` reply to the request in alice's thread denies as well", async () => {
    const command = await deliver({ from: ALICE, subject: 'web1 deploy v3' });
    const { request, jobId } = await requestInThread(command, '`deploy v3`');
    const bobReply = await deliver(replyTo(request, BOB, 'deny not now'));
    const denied = await eventually(() => answersTo(bobReply)[0], 20_000, 'the answer to the denial');
    expect(denied.to).toEqual([BOB]);
    expect(denied.text).toContain(`🚫 Denied: web1 \`deploy v3\` · job ${jobId}`);
    const job = await gw.core.jobs.get(jobId, null);
    expect(job.status).toBe('canceled');
    expect(job.reason).toContain('not now');
    await gw.drainQueue(); // a later job of web1 has run: the denied one would have been handed out before it
    expect(ran).not.toContain('deploy v3');
  }, 60_000);

  it.each([
    ['no Authentication-Results header', []],
    ['dkim=fail', [authResults(AUTHSERV, { dkim: 'fail', dkimDomain: 'example.com' })]],
    ['a pass from another authserv-id', [authResults('mx.attacker.example', { dkim: 'pass', dkimDomain: 'example.com' })]],
    ['dkim=pass for an unaligned domain', [authResults(AUTHSERV, { dkim: 'pass', dkimDomain: 'example.org' })]],
  ])(
    'a forged `approve` reply (%s) changes nothing, and the same reply authenticated does',
    async (what, auth) => {
      const subject = `web1 deploy forged-${what.replace(/\W+/g, '-')}`;
      const command = await deliver({ from: ALICE, subject });
      const { jobId } = await requestInThread(command, subject.slice('web1 '.length));
      const bobRequest = await privateRequest(BOB, jobId);
      const forged = await deliver(replyTo(bobRequest, BOB, 'approve', auth as string[]));
      await handled(forged);
      await sentinel(BOB); // handled after the forged reply, with every answer to bob before its own
      expect(answersTo(forged)).toEqual([]);
      const job = await gw.core.jobs.get(jobId, null);
      expect(job.status).toBe('awaiting_approval');
      expect(job.approval).not.toBeNull();
      expect(job.approval!.approvedBy).toBeNull();
      expect(ran).not.toContain(subject.slice('web1 '.length));
      expect(gw.output()).toContain('mail from an unauthenticated sender refused');

      // The very same reply, authenticated: approved (so only the authentication made the difference).
      const genuine = await deliver(replyTo(bobRequest, BOB, 'approve'));
      await eventually(() => answersTo(genuine).some((m) => m.text.includes('✅ Approved')), 20_000, 'the genuine approval');
      await eventually(() => answersTo(command).some((m) => m.text.includes('— succeeded')), 20_000, "the result in alice's thread");
      expect((await gw.core.jobs.get(jobId, null)).approval?.approvedBy).toBe(BOB_KEY);
    },
    60_000,
  );

  it('an `approve` reply to a mail that is no approval request decides nothing', async () => {
    const command = await deliver({ from: ALICE, subject: 'web1 deploy v4' });
    const { jobId } = await requestInThread(command, '`deploy v4`');
    const ack = answersTo(command).find((m) => m.text.includes('queuing'))!;
    expect(ack).toBeDefined();
    // Bob answers the acknowledgement (no approval request): the bare word is no command.
    const stray = await deliver(replyTo(ack, BOB, 'approve'));
    const answer = await eventually(() => answersTo(stray)[0], 20_000, 'the answer to the stray approve');
    expect(answer.text).toContain('Use `approve <job id>`');
    expect(await status(jobId)).toBe('awaiting_approval');
    expect(ran).not.toContain('deploy v4');
  }, 60_000);

  it('a command that matches no pattern runs at once, without a request', async () => {
    const command = await deliver({ from: ALICE, subject: 'web1 uptime' });
    const result = await eventually(() => answersTo(command).find((m) => m.text.includes('— succeeded')), 20_000, 'the result');
    expect(result.text).toContain('output of uptime');
    expect(answersTo(command).some((m) => m.text.includes('Approval needed'))).toBe(false);
    expect(smtp.mails.some((m) => m.text.includes('Approval needed') && m.text.includes('`uptime`'))).toBe(false);
  }, 60_000);
});
