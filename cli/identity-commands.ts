/** `skadi identity …`: link chat and mail accounts to users (the `closed` access policy admits only linked ones). */
import type { Command } from 'commander';
import { identityKey } from '../cloud/accounts/identities';
import { emit, printTable } from './output';
import { withCore, type GlobalOptions } from './context';

type Opts = GlobalOptions & { json?: boolean; user?: string; name?: string };

/** Registers the identity commands. */
export function registerIdentityCommands(program: Command, globals: () => GlobalOptions): void {
  const identity = program.command('identity').description('link chat and mail accounts (channel:tenant:id) to users');
  identity
    .command('link <key>')
    .description(
      'link an account to a user, e.g. slack:T024BE7LD:U12345, teams:<tenant id>:<AAD object id>, wechat:<bot id>:<contact id> or email:example.com:ops@example.com',
    )
    .requiredOption('--user <user>', 'the user the account acts as')
    .option('--name <name>', 'a display name')
    .option('--json', 'print JSON')
    .action((key: string, opts: Opts) =>
      withCore(globals(), async (core) => {
        const linked = await core.identities.link(key, opts.user!, opts.name ?? null);
        emit(!!opts.json, { key: identityKey(linked.channel, linked.tenant, linked.externalId), user: opts.user }, () =>
          console.log(`${key} now acts as ${opts.user}.`),
        );
      }),
    );
  identity
    .command('unlink <key>')
    .description('remove a link (the account is then refused under the closed policy)')
    .option('--json', 'print JSON')
    .action((key: string, opts: Opts) =>
      withCore(globals(), async (core) => {
        await core.identities.unlink(key);
        emit(!!opts.json, { key, unlinked: true }, () => console.log(`${key} unlinked.`));
      }),
    );
  identity
    .command('list')
    .description('list linked accounts')
    .option('--user <user>', 'only the accounts of this user')
    .option('--json', 'print JSON')
    .action((opts: Opts) =>
      withCore(globals(), async (core) => {
        const owner = opts.user ? await core.users.byName(opts.user) : null;
        const names = new Map((await core.users.list()).map((u) => [u.id, u.name]));
        const rows = (await core.identities.list(owner?.id ?? null)).map((i) => ({
          key: identityKey(i.channel, i.tenant, i.externalId),
          user: names.get(i.userId) ?? String(i.userId),
          name: i.displayName ?? '',
          linked_by: i.automatic ? 'policy' : 'admin',
          last_seen_at: i.lastSeenAt?.toISOString() ?? null,
        }));
        emit(!!opts.json, rows, () => printTable(rows, 'No linked accounts.'));
      }),
    );
}
