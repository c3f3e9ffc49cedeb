/** `skadi user …`, `skadi agent …`: administration of users and agents. */
import type { Command } from 'commander';
import { BadRequestError } from '../cloud/errors';
import { emit, printTable } from './output';
import { withCore, type GlobalOptions } from './context';

type Opts = GlobalOptions & { json?: boolean; user?: string; alias?: string };

const CALLBACK_SECRET_HELP = `
A receiver checks each callback with the secret as the HMAC-SHA256 key (the whole string, whsec_ included):
  X-Skadi-Signature: sha256=<hex HMAC of "<X-Skadi-Timestamp>.<body>">
The secret is derived from SKADI_SECRET, the user id and a random salt in MySQL, so the database alone cannot
sign a callback. \`skadi user token <name>\` replaces it together with the user token.`;

/** Prints a user's callback secret, or why there is none. */
function printCallbackSecret(secret: string | null, name: string): void {
  if (secret) console.log(`Callback secret (also: skadi user callback-secret ${name}): ${secret}`);
  else console.log('No callback secret shown: SKADI_SECRET is not set here, so callbacks are signed with the legacy key only.');
}

/** Registers the user and agent commands. */
export function registerAdminCommands(program: Command, globals: () => GlobalOptions): void {
  const user = program.command('user').description('manage users (owners of agents)');
  user
    .command('add <name>')
    .description('create a user and print its token (shown only once) and its callback secret')
    .option('--json', 'print {"id","name","token","callback_secret"}')
    .action((name: string, opts: Opts) =>
      withCore(globals(), async (core) => {
        const { user: created, token } = await core.users.create(name);
        const secret = core.users.callbackSecretOf(created);
        emit(!!opts.json, { id: created.id, name: created.name, token, callback_secret: secret }, () => {
          console.log(`User ${created.name} created (id ${created.id}).`);
          console.log(`User token (shown only now): ${token}`);
          printCallbackSecret(secret, created.name);
        });
      }),
    );
  user
    .command('list')
    .description('list users')
    .option('--json', 'print JSON')
    .action((opts: Opts) =>
      withCore(globals(), async (core) => {
        const users = (await core.users.list()).map((u) => ({ id: u.id, name: u.name, created_at: u.createdAt.toISOString() }));
        emit(!!opts.json, users, () => printTable(users, 'No users yet: create one with `skadi user add <name>`.'));
      }),
    );
  user
    .command('token <name>')
    .description('replace the token and the callback secret of a user and print the new ones (the old ones stop working)')
    .option('--json', 'print {"id","name","token","callback_secret"}')
    .action((name: string, opts: Opts) =>
      withCore(globals(), async (core) => {
        const token = await core.users.rotateToken(name);
        const secret = await core.users.rotateCallbackSecret(name);
        const found = await core.users.byName(name);
        emit(!!opts.json, { id: found.id, name: found.name, token, callback_secret: secret }, () => {
          console.log(`New user token of ${found.name}: ${token}`);
          printCallbackSecret(secret, found.name);
        });
      }),
    );
  user
    .command('callback-secret <name>')
    .description(
      "print the secret that signs the user's job callbacks (X-Skadi-Signature); made now for a user who has none. Needs SKADI_SECRET",
    )
    .option('--json', 'print {"id","name","callback_secret"}')
    .addHelpText('after', CALLBACK_SECRET_HELP)
    .action((name: string, opts: Opts) =>
      withCore(globals(), async (core) => {
        const secret = await core.users.callbackSecret(name);
        const found = await core.users.byName(name);
        emit(!!opts.json, { id: found.id, name: found.name, callback_secret: secret }, () => console.log(secret));
      }),
    );

  const agent = program.command('agent').description("manage a user's agents");
  agent
    .command('add <name>')
    .description('create an agent and print its token (shown only once)')
    .requiredOption('--user <user>', 'owner of the agent')
    .option('--alias <alias>', 'a second name for the agent')
    .option('--json', 'print {"id","name","token"}')
    .action((name: string, opts: Opts) =>
      withCore(globals(), async (core) => {
        const owner = await core.users.byName(opts.user!);
        const { agent: created, token } = await core.agents.create(owner.id, name, opts.alias ?? null);
        emit(!!opts.json, { id: created.id, name: created.name, alias: created.alias, token }, () => {
          console.log(`Agent ${created.name} created for ${owner.name} (id ${created.id}).`);
          console.log(`Agent token (shown only now): ${token}`);
        });
      }),
    );
  agent
    .command('list')
    .description('list agents with online/offline and last seen')
    .option('--user <user>', 'only the agents of this user')
    .option('--json', 'print JSON')
    .action((opts: Opts) =>
      withCore(globals(), async (core) => {
        const owner = opts.user ? await core.users.byName(opts.user) : null;
        const rows = (await core.agents.statuses(owner?.id ?? null)).map((s) => ({
          id: s.agent.id,
          user_id: s.agent.userId,
          name: s.agent.name,
          alias: s.agent.alias ?? '',
          online: s.online,
          last_seen_at: s.lastSeenAt?.toISOString() ?? null,
        }));
        emit(!!opts.json, rows, () => printTable(rows, 'No agents yet: create one with `skadi agent add <name> --user <user>`.'));
      }),
    );
  agent
    .command('remove <name>')
    .description('delete an agent (its queued jobs expire, its token stops working)')
    .requiredOption('--user <user>', 'owner of the agent')
    .option('--json', 'print JSON')
    .action((name: string, opts: Opts) =>
      withCore(globals(), async (core) => {
        const owner = await core.users.byName(opts.user!);
        const removed = await core.agents.remove(owner.id, name);
        emit(!!opts.json, { id: removed.id, name: removed.name, removed: true }, () => console.log(`Agent ${removed.name} removed.`));
      }),
    );
  for (const [verb, available] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    agent
      .command(`${verb} <name>`)
      .description(
        available
          ? 'let a disabled agent poll and receive jobs again'
          : 'refuse the agent (403) and any new job for it, keeping its history',
      )
      .requiredOption('--user <user>', 'owner of the agent')
      .option('--json', 'print JSON')
      .action((name: string, opts: Opts) =>
        withCore(globals(), async (core) => {
          const owner = await core.users.byName(opts.user!);
          const changed = await core.agents.setAvailable(owner.id, name, available);
          emit(!!opts.json, { id: changed.id, name: changed.name, available }, () => console.log(`Agent ${changed.name} ${verb}d.`));
        }),
      );
  }
  agent
    .command('require-approval <name> [patterns...]')
    .description("jobs whose text matches a pattern (glob: `deploy *`, `*` for all) wait for another person's approval; replaces the list")
    .requiredOption('--user <user>', 'owner of the agent')
    .option('--clear', 'no job of this agent needs approval any more')
    .option('--json', 'print JSON')
    .action((name: string, patterns: string[], opts: Opts & { clear?: boolean }) =>
      withCore(globals(), async (core) => {
        if (!opts.clear && patterns.length === 0) throw new BadRequestError('Give one or more patterns (e.g. "deploy *"), or --clear.');
        const owner = await core.users.byName(opts.user!);
        const changed = await core.agents.setApprovalPatterns(owner.id, name, opts.clear ? [] : patterns);
        emit(!!opts.json, { id: changed.id, name: changed.name, approval_patterns: changed.approvalPatterns }, () =>
          console.log(
            changed.approvalPatterns.length
              ? `Jobs of ${changed.name} matching ${changed.approvalPatterns.map((p) => `"${p}"`).join(', ')} need approval.`
              : `Jobs of ${changed.name} need no approval.`,
          ),
        );
      }),
    );
  agent
    .command('show <name>')
    .description('show an agent: status, last seen, and the patterns of jobs that need approval')
    .requiredOption('--user <user>', 'owner of the agent')
    .option('--json', 'print JSON')
    .action((name: string, opts: Opts) =>
      withCore(globals(), async (core) => {
        const owner = await core.users.byName(opts.user!);
        const found = await core.agents.byName(owner.id, name);
        const status = (await core.agents.statuses(owner.id)).find((s) => s.agent.id === found.id);
        const shown = {
          id: found.id,
          name: found.name,
          alias: found.alias ?? '',
          user: owner.name,
          available: found.available,
          online: status?.online ?? false,
          last_seen_at: status?.lastSeenAt?.toISOString() ?? null,
          approval_patterns: found.approvalPatterns,
        };
        emit(!!opts.json, shown, () => {
          for (const [k, v] of Object.entries(shown)) if (k !== 'approval_patterns') console.log(`${k}: ${v}`);
          console.log(
            `approval: ${found.approvalPatterns.length ? found.approvalPatterns.map((p) => `"${p}"`).join(', ') : 'not required'}`,
          );
        });
      }),
    );
  agent
    .command('token <name>')
    .description('replace the token of an agent and print the new one (the old one stops working)')
    .requiredOption('--user <user>', 'owner of the agent')
    .option('--json', 'print {"id","name","token"}')
    .action((name: string, opts: Opts) =>
      withCore(globals(), async (core) => {
        const owner = await core.users.byName(opts.user!);
        const { agent: rotated, token } = await core.agents.rotateToken(owner.id, name);
        emit(!!opts.json, { id: rotated.id, name: rotated.name, token }, () => console.log(`New agent token of ${rotated.name}: ${token}`));
      }),
    );
}
