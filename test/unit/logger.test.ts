import { Writable } from 'node:stream';
import { createLogger, maskSecrets } from '../../cli/logger';
import { loadConfig } from '../../config';

describe('maskSecrets', () => {
  it('masks Skadi and Slack tokens and bearer credentials anywhere in a line', () => {
    const line =
      '{"body":"token=ska_AbC123xyz-_987&x=1","auth":"Bearer eyJhbGciOi.J9.abc","slack":"xoxb-1234-5678-abcdef","user":"sku_zzzzzzzzzz"}';
    expect(maskSecrets(line)).toBe('{"body":"token=ska_***&x=1","auth":"Bearer ***","slack":"xoxb-***","user":"sku_***"}');
  });

  it('masks configured secret values and leaves ordinary text alone', () => {
    expect(maskSecrets('signing secret is s3cr3t-signing, ok', ['s3cr3t-signing'])).toBe('signing secret is ***, ok');
    expect(maskSecrets('skadi agent web1 is online')).toBe('skadi agent web1 is online');
  });
});

describe('createLogger', () => {
  it('masks secrets in every line it writes, whoever logs them', () => {
    let written = '';
    const sink = new Writable({ write: (chunk, _, done) => ((written += chunk), done()) });
    const config = loadConfig({ env: { SKADI_SLACK_SIGNING_SECRET: 'signing-secret-value', SKADI_SLACK_BOT_TOKEN: 'xoxb-1-2-3' } });
    const log = createLogger(config, { destination: sink, level: 'debug' });
    log.debug({ request: { body: 'text=agent token web1 → ska_NEWTOKENvalue123' } }, 'a library dumps its request');
    log.info(`secret signing-secret-value leaked`);
    expect(written).toContain('a library dumps its request');
    expect(written).not.toContain('NEWTOKENvalue123');
    expect(written).not.toContain('signing-secret-value');
  });
});
