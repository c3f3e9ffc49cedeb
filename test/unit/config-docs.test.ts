/** docs/configuration.md is made from the settings table: it lists every setting, and is not stale. */
import fs from 'node:fs';
import path from 'node:path';
import { SETTINGS } from '../../config';
import { renderConfigurationDoc } from '../../config/docs';

const page = fs.readFileSync(path.join(__dirname, '../../docs/configuration.md'), 'utf8');

describe('docs/configuration.md', () => {
  it('is what `npm run docs:config` writes from the settings table (run it after changing a setting)', () => {
    expect(page).toBe(renderConfigurationDoc());
  });

  it('has one row of every setting, with its variable and default', () => {
    for (const spec of SETTINGS) {
      const rows = page.split('\n').filter((line) => line.startsWith(`| \`${spec.file}\` | \`${spec.env}\` |`));
      expect({ setting: spec.file, rows: rows.length }).toEqual({ setting: spec.file, rows: 1 });
    }
    expect(page).toContain('| `job_lease` | `SKADI_JOB_LEASE` | `10m` |');
    expect(page).toContain('| `slack_bot_token` | `SKADI_SLACK_BOT_TOKEN` | (empty) |');
  });

  it('marks secret settings, and escapes what would break a table', () => {
    const doc = renderConfigurationDoc([
      {
        key: 'port',
        file: 'a_b',
        env: 'SKADI_A_B',
        secret: true,
        default: ['x', 'y'],
        help: 'one | two\nthree',
        schema: SETTINGS[0].schema,
      },
    ]);
    expect(doc).toContain('| `a_b` | `SKADI_A_B` | `x,y` | one \\| two three (secret) |');
  });
});
