/** docs/configuration.md, made from the settings table (npm run docs:config writes it; a test fails when it is stale). */
import { SETTINGS, type SettingSpec } from './settings';

/** The groups of the page, by the prefix of the setting's key; the gateway's own settings have none. */
const GROUPS: { title: string; prefix: string; page?: string }[] = [
  { title: 'Gateway', prefix: '' },
  { title: 'Slack', prefix: 'slack', page: 'slack.md' },
  { title: 'Microsoft Teams', prefix: 'teams', page: 'teams.md' },
  { title: 'E-mail', prefix: 'email', page: 'email.md' },
  { title: 'WeChat', prefix: 'wechat', page: 'wechat.md' },
];

const INTRO = `# Configuration

Every setting of the gateway: where settings come from, each file key with its variable, default and meaning, durations and logs.

<!-- Made from config/settings.ts and adapters/*/config.ts by \`npm run docs:config\`: edit those, not this file. -->

Settings come from defaults, then an optional YAML or JSON file (\`--config file\` or \`SKADI_CONFIG\`),
then \`SKADI_*\` environment variables. A wrong value stops start-up with one line naming the setting.
Values marked secret are never logged (URLs are shown with the password hidden).
`;

const OUTRO = `Durations read \`500ms\`, \`30s\`, \`15m\`, \`1h30m\`, \`2d\`. Logs go to stdout (pino): readable coloured
lines when stdout is a terminal, JSON lines otherwise (under systemd, Docker or a pipe) and always with
\`skadi serve --json\`. Every line, whichever library wrote it (Bolt's debug dumps included), has
token-shaped strings (\`ska_…\`, \`sku_…\`, \`xoxb-…\`, \`xapp-…\`, \`Bearer …\`) and the values of secret
settings replaced by \`***\`.
`;

/** A default as the table shows it. */
function shownDefault(value: unknown): string {
  const text = Array.isArray(value) ? value.join(',') : String(value);
  return text === '' ? '(empty)' : `\`${text}\``;
}

/** A table cell: pipes escaped, on one line. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

function row(spec: SettingSpec): string {
  const meaning = spec.secret ? `${spec.help} (secret)` : spec.help;
  return `| \`${spec.file}\` | \`${spec.env}\` | ${shownDefault(spec.default)} | ${cell(meaning)} |`;
}

function groupOf(spec: SettingSpec): string {
  return GROUPS.find((g) => g.prefix !== '' && spec.key.startsWith(g.prefix))?.prefix ?? '';
}

/** The whole page. */
export function renderConfigurationDoc(settings: readonly SettingSpec[] = SETTINGS): string {
  const parts = [INTRO];
  for (const group of GROUPS) {
    const rows = settings.filter((s) => groupOf(s) === group.prefix);
    if (rows.length === 0) continue;
    const see = group.page ? `Setting up the channel: [${group.page}](${group.page}).\n\n` : '';
    parts.push(
      `## ${group.title}\n\n${see}| file key | variable | default | meaning |\n| --- | --- | --- | --- |\n${rows.map(row).join('\n')}\n`,
    );
  }
  parts.push(OUTRO);
  return parts.join('\n');
}
