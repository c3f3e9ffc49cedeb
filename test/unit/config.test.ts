import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, parseSettingValue, redactConfig } from '../../config';
import { restartDelayMs } from '../../cli/cluster';

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({ env: {} });
    expect(config).toMatchObject({
      port: 1323,
      mysqlUrl: 'mysql://root@127.0.0.1:3306/skadi',
      redisUrl: 'redis://127.0.0.1:6379/0',
      redisPrefix: 'skadi:',
      jobLeaseMs: 600_000,
      agentOfflineAfterMs: 180_000,
      bodyLimitBytes: 1024 * 1024,
    });
  });

  it('reads SKADI_* variables over the file', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'skadi-')), 'skadi.yml');
    fs.writeFileSync(file, 'port: 8080\njob_lease: 5m\nredis_prefix: "a:"\n');
    const config = loadConfig({ env: { SKADI_PORT: '9090', SKADI_AGENT_OFFLINE_AFTER: '90s' }, file });
    expect(config.port).toBe(9090);
    expect(config.jobLeaseMs).toBe(300_000);
    expect(config.agentOfflineAfterMs).toBe(90_000);
    expect(config.redisPrefix).toBe('a:');
  });

  it('reads the number of workers: 1 by default, a number, or auto for one per core; anything else is refused', () => {
    expect(loadConfig({ env: {} }).workers).toBe(1);
    expect(loadConfig({ env: { SKADI_WORKERS: '3' } }).workers).toBe(3);
    expect(loadConfig({ env: { SKADI_WORKERS: 'auto' } }).workers).toBe(os.availableParallelism());
    for (const bad of ['0', '-1', '1.5', 'many', '1000']) {
      expect(() => loadConfig({ env: { SKADI_WORKERS: bad } })).toThrow(
        /workers \(SKADI_WORKERS\).*not a number of workers \(use 1 to 256, or auto/,
      );
    }
    expect(parseSettingValue('workers', 'auto', '--workers')).toBe(os.availableParallelism());
    expect(() => parseSettingValue('workers', 'x', '--workers')).toThrow(/--workers/);
  });

  it('names the setting and the problem in one line', () => {
    expect(() => loadConfig({ env: { SKADI_JOB_LEASE: 'soon' } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { SKADI_JOB_LEASE: 'soon' } })).toThrow(/job_lease \(SKADI_JOB_LEASE\).*not a duration/);
    expect(() => loadConfig({ env: { SKADI_PORT: '70000' } })).toThrow(/SKADI_PORT/);
    expect(() => loadConfig({ env: { SKADI_MYSQL_URL: 'postgres://x' } })).toThrow(/SKADI_MYSQL_URL/);
  });

  it('reads Redis Cluster seed nodes from a list or a comma-separated variable', () => {
    expect(loadConfig({ env: {} }).redisCluster).toEqual([]);
    expect(loadConfig({ env: { SKADI_REDIS_CLUSTER: '10.0.0.1:7001, 10.0.0.2:7002' } }).redisCluster).toEqual([
      '10.0.0.1:7001',
      '10.0.0.2:7002',
    ]);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'skadi-')), 'skadi.yml');
    fs.writeFileSync(file, 'redis_cluster:\n  - redis-a:6379\n  - redis-b:6379\n');
    expect(loadConfig({ env: {}, file }).redisCluster).toEqual(['redis-a:6379', 'redis-b:6379']);
    expect(() => loadConfig({ env: { SKADI_REDIS_CLUSTER: '10.0.0.1' } })).toThrow(/SKADI_REDIS_CLUSTER.*host:port/);
  });

  it('hides secret values in errors and logs', () => {
    expect(() => loadConfig({ env: { SKADI_REDIS_URL: 'not a url with secret' } })).toThrow(/\(hidden\)/);
    const shown = redactConfig(loadConfig({ env: { SKADI_MYSQL_URL: 'mysql://root:hunter2@db:3306/skadi' } }));
    expect(JSON.stringify(shown)).not.toContain('hunter2');
  });

  it('rejects unknown keys in the file', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'skadi-')), 'skadi.yml');
    fs.writeFileSync(file, 'prot: 8080\n');
    expect(() => loadConfig({ env: {}, file })).toThrow(/unknown setting "prot"/);
  });
});

describe('serve --workers: restarting a worker that dies', () => {
  it('waits 1 s, then twice as long each time it dies again, up to 30 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map(restartDelayMs)).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });
});
