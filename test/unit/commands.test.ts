/** Chat commands: the parser, and each command run against in-memory fakes of the core and the conversation. */
import type { OutboundMessage } from '../../adapters/contract';
import { checkAgentName } from '../../cloud/agents/agent-service';
import { executeCommand, type CommandPort, type Conversation } from '../../cloud/chat/execute';
import { decodeOrigin } from '../../cloud/chat/origin';
import { agentRow, jobRow } from '../helpers/rows';
import { HELP_TEXT, parseCommand } from '../../cloud/chat/parse';
import { NotFoundError } from '../../cloud/errors';
import type { AgentRow } from '../../cloud/store/agents';
import type { JobRow } from '../../cloud/store/jobs';
import type { UserRow } from '../../cloud/store/users';

describe('parseCommand', () => {
  it.each([
    ['help', { kind: 'help' }],
    ['', { kind: 'help' }],
    ['status', { kind: 'status' }],
    ['AGENTS', { kind: 'status' }],
    ['jobs', { kind: 'jobs', agent: null }],
    ['jobs web1', { kind: 'jobs', agent: 'web1' }],
    ['agent add web1', { kind: 'agent-add', name: 'web1', alias: null }],
    ['agent add web1 w', { kind: 'agent-add', name: 'web1', alias: 'w' }],
    ['agent remove web1', { kind: 'agent-remove', name: 'web1' }],
    ['agent token web1', { kind: 'agent-token', name: 'web1' }],
    ['cancel 01k8zzzzzzzzzzzzzzzzzzzzzz', { kind: 'cancel', jobId: '01K8ZZZZZZZZZZZZZZZZZZZZZZ' }],
    ['delay 1h30m db1 backup --full', { kind: 'delay', delayMs: 5_400_000, agent: 'db1', text: 'backup --full' }],
    ['notify here', { kind: 'notify-here' }],
    ['token', { kind: 'token' }],
    ['web1 restart nginx', { kind: 'job', agent: 'web1', text: 'restart nginx' }],
    ['web1   df  -h', { kind: 'job', agent: 'web1', text: 'df  -h' }],
    ['web1', { kind: 'incomplete', agent: 'web1' }],
  ])('%j', (text, expected) => {
    expect(parseCommand(text)).toEqual(expected);
  });

  it.each([
    'agent',
    'agent add',
    'agent add a b c',
    'agent fly web1',
    'cancel',
    'cancel a b',
    'delay soon db1 x',
    'delay 5m db1',
    'notify me',
    'token please',
  ])('explains the usage of %j', (text) => {
    const parsed = parseCommand(text);
    expect(parsed.kind).toBe('invalid');
    expect((parsed as { message: string }).message).toMatch(/Use|takes/);
  });
});

describe('reserved names', () => {
  it.each(['help', 'status', 'agents', 'jobs', 'agent', 'cancel', 'delay', 'notify', 'token', 'Help'])(
    '%s cannot name an agent',
    (name) => {
      expect(() => checkAgentName(name)).toThrow(/reserved/);
    },
  );
  it('allows ordinary names', () => {
    expect(() => checkAgentName('web1')).not.toThrow();
  });
});

const user: UserRow = { id: 7, name: 'ops', tokenHash: 'x', callbackSalt: null, createdAt: new Date(), tokenIssuedTo: null };
const agentOf = (id: number, name: string): AgentRow => agentRow({ id, name, tokenHash: 'h', lastSeenAt: new Date() });

/** A port method the commands of a test do not call. */
const unused = async (): Promise<never> => {
  throw new Error('not expected in this test');
};

/** An in-memory conversation recording what was said where. */
function fakeConversation(isPrivate: boolean, canEdit = true, threads = true) {
  const said: { where: 'here' | 'private'; message: OutboundMessage; ref: string }[] = [];
  let n = 0;
  const convo: Conversation = {
    channel: 'slack',
    replyTo: 'conversation-1',
    identity: 'slack:T1:U1',
    identityId: 1,
    isPrivate,
    canEdit,
    threads,
    async reply(message) {
      const ref = `ref-${++n}`;
      said.push({ where: 'here', message, ref });
      return ref;
    },
    async replyPrivately(message) {
      const ref = `private-${++n}`;
      said.push({ where: 'private', message, ref });
      return ref;
    },
  };
  return { convo, said };
}

/** An in-memory core with two agents. */
function fakePort() {
  const agents = [agentOf(1, 'web1'), agentOf(2, 'db1')];
  const pushed: { agent: string; text: string; origin: unknown; id?: string }[] = [];
  const delayed: { agent: string; text: string; delayMs: number }[] = [];
  let notify: unknown = null;
  const job = (status: JobRow['status']): JobRow =>
    jobRow({
      id: '01K8ZZZZZZZZZZZZZZZZZZZZZZ',
      source: 'slack',
      status,
      result: 'up',
      reason: status === 'canceled' ? 'canceled by the owner' : null,
    });
  const port: CommandPort = {
    agentStatuses: async () => agents.map((agent, i) => ({ agent, online: i === 0, lastSeenAt: new Date(Date.now() - 5000) })),
    findAgent: async (_u, name) => agents.find((a) => a.name.toLowerCase() === name.toLowerCase()) ?? null,
    push: async (agent, text, origin) => {
      pushed.push({ agent: agent.name, text, origin: origin.origin, id: origin.id });
      return { id: origin.id!, status: 'queuing' };
    },
    delay: async (agent, text, delayMs) => {
      delayed.push({ agent: agent.name, text, delayMs });
      return { id: '01K8DELAYDELAYDELAYDELAYDE', dueAt: new Date(Date.now() + delayMs) };
    },
    cancel: async (_u, id) => {
      if (id !== job('queuing').id) throw new NotFoundError(`There is no job ${id}.`);
      return job('canceled');
    },
    recentJobs: async () => [job('succeeded')],
    createAgent: async (_u, name) => ({ agent: agentOf(3, name), token: 'ska_secret_agent_token' }),
    removeAgent: async (_u, name) => agentOf(1, name),
    rotateAgentToken: async (_u, name) => ({ agent: agentOf(1, name), token: 'ska_new_agent_token' }),
    rotateUserToken: async () => 'sku_new_user_token',
    setNotifyTarget: async (_u, channel, replyTo) => void (notify = { channel, replyTo }),
    // Approvals have their own tests (test/integration/approvals.test.ts); the commands here never reach them.
    findAwaiting: unused,
    approve: unused,
    deny: unused,
    setApprovalPatterns: unused,
    requestClearPatterns: unused,
  };
  return { port, pushed, delayed, notify: () => notify };
}

describe('executeCommand', () => {
  it('help answers the usage text', async () => {
    const { convo, said } = fakeConversation(false);
    await executeCommand(parseCommand('help'), user, convo, fakePort().port);
    expect(said).toEqual([{ where: 'here', message: { text: HELP_TEXT }, ref: 'ref-1' }]);
  });

  it('a job is acknowledged first, then queued with the acknowledgement as its origin', async () => {
    const { convo, said } = fakeConversation(false);
    const { port, pushed } = fakePort();
    await executeCommand(parseCommand('WEB1 restart nginx'), user, convo, port);
    expect(pushed).toHaveLength(1);
    expect(pushed[0]).toMatchObject({ agent: 'web1', text: 'restart nginx' });
    expect(decodeOrigin(pushed[0].origin as string)).toEqual({ channel: 'slack', ref: 'ref-1' });
    expect(said[0].message.text).toContain(`⏳ web1: \`restart nginx\` — queuing · job ${pushed[0].id}`);
  });

  it('in a channel without threads the acknowledgement starts with the agent and the short id', async () => {
    const { convo, said } = fakeConversation(false, false, false);
    const { port, pushed } = fakePort();
    await executeCommand(parseCommand('web1 restart nginx'), user, convo, port);
    expect(said[0].message.text).toBe(`web1 #${pushed[0].id!.slice(-4)} ⏳ queuing · \`restart nginx\``);
  });

  it("an unknown agent answers with the list of the sender's agents and queues nothing", async () => {
    const { convo, said } = fakeConversation(false);
    const { port, pushed } = fakePort();
    await executeCommand(parseCommand('nosuch ls'), user, convo, port);
    expect(pushed).toHaveLength(0);
    expect(said[0].message.text).toBe('There is no agent named "nosuch". Your agents: web1, db1.');
  });

  it('a lone agent name asks what to do', async () => {
    const { convo, said } = fakeConversation(false);
    await executeCommand(parseCommand('web1'), user, convo, fakePort().port);
    expect(said[0].message.text).toContain('What should web1 do?');
  });

  it('status lists agents online and offline', async () => {
    const { convo, said } = fakeConversation(false);
    await executeCommand(parseCommand('status'), user, convo, fakePort().port);
    expect(said[0].message.text).toMatch(/🟢 web1 — online, last seen \ds ago\n⚪ db1 — offline/);
  });

  it('jobs lists recent jobs, and an unknown agent is explained', async () => {
    const { convo, said } = fakeConversation(false);
    await executeCommand(parseCommand('jobs'), user, convo, fakePort().port);
    expect(said[0].message.text).toContain('✅ web1: `uptime` — succeeded');
    await executeCommand(parseCommand('jobs nosuch'), user, convo, fakePort().port);
    expect(said[1].message.text).toContain('There is no agent named "nosuch"');
  });

  it('delay queues a delayed job and says when', async () => {
    const { convo, said } = fakeConversation(false);
    const { port, delayed } = fakePort();
    await executeCommand(parseCommand('delay 15m db1 backup'), user, convo, port);
    expect(delayed).toEqual([{ agent: 'db1', text: 'backup', delayMs: 900_000 }]);
    expect(said[1].message).toMatchObject({ replaces: 'ref-1', text: expect.stringContaining('(in 15m)') });
  });

  it('delay in a channel without edits posts the confirmation as a new message', async () => {
    const { convo, said } = fakeConversation(false, false);
    await executeCommand(parseCommand('delay 15m db1 backup'), user, convo, fakePort().port);
    expect(said).toHaveLength(2);
    expect(said[1].message.replaces).toBeUndefined();
    expect(said[1].message.text).toContain('job 01K8DELAYDELAYDELAYDELAYDE');
  });

  it('cancel answers with the canceled job', async () => {
    const { convo, said } = fakeConversation(false);
    await executeCommand(parseCommand('cancel 01K8ZZZZZZZZZZZZZZZZZZZZZZ'), user, convo, fakePort().port);
    expect(said[0].message.text).toContain('🚫 web1');
  });

  it('agent add in a channel sends the token privately and says so publicly', async () => {
    const { convo, said } = fakeConversation(false);
    await executeCommand(parseCommand('agent add web2'), user, convo, fakePort().port);
    const publicText = said
      .filter((s) => s.where === 'here')
      .map((s) => s.message.text)
      .join('\n');
    const privateText = said
      .filter((s) => s.where === 'private')
      .map((s) => s.message.text)
      .join('\n');
    expect(privateText).toContain('ska_secret_agent_token');
    expect(publicText).not.toContain('ska_secret_agent_token');
    expect(publicText).toContain('private message');
  });

  it('agent add in a private conversation answers with the token directly', async () => {
    const { convo, said } = fakeConversation(true);
    await executeCommand(parseCommand('agent add web2'), user, convo, fakePort().port);
    expect(said).toHaveLength(1);
    expect(said[0]).toMatchObject({ where: 'here', message: { text: expect.stringContaining('ska_secret_agent_token') } });
  });

  it('agent token and token never put a token in a shared conversation', async () => {
    for (const text of ['agent token web1', 'token']) {
      const { convo, said } = fakeConversation(false);
      await executeCommand(parseCommand(text), user, convo, fakePort().port);
      for (const s of said.filter((x) => x.where === 'here')) expect(s.message.text).not.toMatch(/sk[au]_new/);
      expect(said.some((s) => s.where === 'private' && /sk[au]_new/.test(s.message.text))).toBe(true);
    }
  });

  it('agent remove confirms', async () => {
    const { convo, said } = fakeConversation(false);
    await executeCommand(parseCommand('agent remove web1'), user, convo, fakePort().port);
    expect(said[0].message.text).toContain('Agent web1 removed');
  });

  it('notify here records this conversation', async () => {
    const { convo, said } = fakeConversation(false);
    const fake = fakePort();
    await executeCommand(parseCommand('notify here'), user, convo, fake.port);
    expect(fake.notify()).toEqual({ channel: 'slack', replyTo: 'conversation-1' });
    expect(said[0].message.text).toContain('🔔');
  });
});
