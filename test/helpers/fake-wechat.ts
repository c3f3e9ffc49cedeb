/** Drives the fake WeChat process (fake-wechat-process.js): a puppet service with a mock WeChat behind it. */
import { fork, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { eventually } from './env';

/** The bot account's id, and the contacts and room of the fake. */
export const BOT_ID = 'wxid_skadibot';
export const ROOM_ID = 'ops-room@chatroom';
export const CONTACTS = { alice: 'wxid_alice', bob: 'wxid_bob', carol: 'wxid_carol' } as const;
export type Person = keyof typeof CONTACTS;

/** A message the bot sent: to a contact, or in the room. */
export interface Answer {
  text: string;
  to: string | null;
  roomId: string | null;
  at: number;
}

/** What a person says. */
export interface Say {
  room?: boolean;
  /** In the room: @mention the bot. */
  mention?: boolean;
  /** An old timestamp, as history replayed at login. */
  old?: boolean;
  /** A picture instead of text. */
  image?: boolean;
}

/** A running fake WeChat. */
export interface FakeWechat {
  port: number;
  token: string;
  /** Everything the bot said, in order. */
  answers: Answer[];
  /** How many times a gateway's puppet started against it (each logs the bot in). */
  clientStarts(): number;
  /** A person (or the bot's own account) says something to the bot, or in the room. */
  say(from: Person | 'bot', text: string, how?: Say): void;
  /** The settings that point a gateway at it; each gateway node gets its own HOME (wechaty caches under it). */
  settings(): Record<string, string>;
  /** SIGKILLs the process (the puppet service disappears without a goodbye). */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts the fake WeChat (on a free port with a new token, unless given). */
export async function startFakeWechat(options: { port?: number; token?: string } = {}): Promise<FakeWechat> {
  const port = options.port ?? (await freePort());
  const token = options.token ?? `insecure_${crypto.randomBytes(8).toString('hex')}`;
  const answers: Answer[] = [];
  let starts = 0;
  let child: ChildProcess | null = null;
  const homes: string[] = [];

  const launch = async () => {
    const proc = fork(path.join(__dirname, 'fake-wechat-process.js'), [String(port), token], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    let output = '';
    proc.stdout!.on('data', (d) => (output += d));
    proc.stderr!.on('data', (d) => (output += d));
    proc.on('message', (m: any) => {
      if (m.type === 'answer') answers.push({ text: m.text, to: m.to, roomId: m.roomId, at: m.at });
      if (m.type === 'client-start') starts++;
    });
    await new Promise<void>((resolve, reject) => {
      proc.on('message', (m: any) => m.type === 'ready' && resolve());
      proc.once('exit', (code) => reject(new Error(`the fake WeChat exited with ${code}:\n${output}`)));
    });
    child = proc;
    proc.once('exit', (code, signal) => {
      if (child === proc) console.error(`the fake WeChat died (${code ?? signal}):\n${output}`); // not a kill() of the test
    });
  };

  const kill = async () => {
    const proc = child;
    child = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await gone;
  };

  await launch();
  return {
    port,
    token,
    answers,
    clientStarts: () => starts,
    say(from, text, how = {}) {
      if (!child) throw new Error('the fake WeChat is not running');
      child.send({ type: 'say', from, text, ...how });
    },
    settings() {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), 'skadi-wechat-home-'));
      homes.push(home);
      return {
        HOME: home,
        SKADI_WECHAT_PUPPET: 'wechaty-puppet-service',
        SKADI_WECHAT_PUPPET_TOKEN: token,
        SKADI_WECHAT_PUPPET_ENDPOINT: `127.0.0.1:${port}`,
        SKADI_WECHAT_PUPPET_TLS: 'false',
      };
    },
    kill,
    restart: launch,
    async close() {
      await kill();
      for (const home of homes) fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Waits until the bot has said something matching, and returns it. */
export function answerMatching(fake: FakeWechat, test: (a: Answer) => boolean, timeoutMs = 15_000, what = 'an answer'): Promise<Answer> {
  return eventually(() => fake.answers.find(test), timeoutMs, what) as Promise<Answer>;
}

/** Whether a gateway reports its WeChat channel up (skadi_channel_up{channel="wechat"}). */
export async function wechatUp(base: string): Promise<boolean> {
  const metrics = await (await fetch(`${base}/metrics`)).text();
  return /skadi_channel_up\{channel="wechat"\} 1/.test(metrics);
}
