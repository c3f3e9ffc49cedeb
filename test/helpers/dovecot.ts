/** A real Dovecot IMAP server of a test's own: own config, temp dir, port, Maildir and log; nothing shared with others. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ImapFlow } from 'imapflow';

// Traps met while making this work (Dovecot 2.3.19 on Debian 12, tests running as root):
// - `doveadm stop` polls for the master to vanish and takes ~2 s; the daemonized master is nobody's child and leaves
//   zombies behind. So Dovecot runs in the foreground (`-F`) as our child: SIGTERM, then wait for its 'exit'.
// - Even so a stop takes ~1.1 s: on SIGTERM the master SIGQUITs its log process and then sleeps a fixed second
//   (hard-coded, no setting). stop() and restart() pay it rather than SIGKILL, so clients get a proper BYE.
// - A static userdb uid below first_valid_uid (500 by default) is refused after a good login ("Mail access for users
//   with UID 108 not permitted" in the log, the client sees only "Unexpected close"): first_valid_uid = the mail uid.
// - mkdtemp makes a 0700 root dir: dovenull (imap-login) cannot reach base_dir/login/ and the auth process (user
//   dovecot) cannot read the passwd-file. So the temp dir is chowned to the mail uid and made 0755.
// - Unix socket paths are limited to 108 bytes, and base_dir holds sockets like login/imap-urlauth: the temp dir lives
//   directly in /tmp, never under a long or private TMPDIR.
// - One failed login makes every later login from 127.0.0.1 wait 2-4 s (auth penalty per IP, kept by anvil, plus
//   auth_failure_delay = 2 s). No setting turns the penalty off; a mode 0 anvil-auth-penalty socket does.
// - mail_max_userip_connections defaults to 10 per user and IP: a few gateway nodes plus the helpers' own sessions
//   reach that and the 11th login fails (NO [LIMIT]). It is raised to 100.
// - Without inotify, IDLE sees new mail only every mailbox_idle_check_interval (30 s by default): set to 1 s.
//   With inotify (as here) an IDLE client gets EXISTS ~0.5 s after an APPEND. But imapflow enters IDLE by itself only
//   15 s after its last command (AUTO_IDLE_DELAY): a watcher that wants mail fast must call client.idle() itself.
// - messages() leaves out \Recent: it belongs to whichever session saw the mail first, so it would make tests flaky.
// - The system Dovecot (/etc/dovecot, possibly started by apt) is never used: every command gets `-c <our conf>`.
// - IMAP APPEND of bytes like NUL works: Dovecot offers BINARY and imapflow sends such mail as a literal8.

const DOVECOT = '/usr/sbin/dovecot';
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

/** One mail as the server lists it. */
export interface DovecotMessage {
  uid: number;
  flags: string[];
  subject: string;
  messageId: string;
}

/** A running Dovecot of one test file. */
export interface Dovecot {
  host: string;
  port: number;
  /** The first user (`skadi` unless told otherwise); append() and messages() act as this user. */
  user: string;
  password: string;
  /** imap://user:password@127.0.0.1:port */
  url: string;
  /** The temp dir with the config, the log, the sockets and the Maildirs (home/<user>/Maildir). */
  dir: string;
  /** Adds a mail with IMAP APPEND (the mailbox is created when missing). */
  append(raw: string | Buffer, mailbox?: string): Promise<void>;
  /** Every mail of a mailbox (INBOX by default), read without changing flags. */
  messages(mailbox?: string): Promise<DovecotMessage[]>;
  /** Stops (or, with kill, SIGKILLs every process of) Dovecot and starts it again on the same port and Maildir (the mail is kept). */
  restart(options?: { kill?: boolean }): Promise<void>;
  /** Stops Dovecot and removes the temp dir. */
  stop(): Promise<void>;
  /** Dovecot's log (log file plus anything it wrote to stderr), for failure messages. */
  log(): string;
}

/** Options of startDovecot. */
export interface DovecotOptions {
  /** Users and their plain passwords; the first is the main one. Default `{ skadi: 'secret' }`. */
  users?: Record<string, string>;
  /** PEM files of a certificate and its key: STARTTLS is then offered (the helpers' own sessions stay plain). */
  tls?: { certFile: string; keyFile: string };
}

/** True when the Dovecot binary is installed. */
export function dovecotAvailable(): boolean {
  return fs.existsSync(DOVECOT);
}

/** The uid and gid that own the mail: the `dovecot` user, else `nobody` (never root). */
function mailOwner(): { uid: number; gid: number } {
  const passwd = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((line) => line.split(':'));
  for (const name of ['dovecot', 'nobody']) {
    const entry = passwd.find((fields) => fields[0] === name);
    if (entry && Number(entry[2]) > 0) return { uid: Number(entry[2]), gid: Number(entry[3]) };
  }
  throw new Error('no user "dovecot" or "nobody" to own the test mail');
}

/** A port that was free a moment ago (listen on 0, close). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Whether something listens on the port. */
function listens(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
    socket.on('error', () => resolve(false));
  });
}

/** Whether the port can be bound (nothing listens on it any more). */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer().once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Polls `check` every 20 ms until it is true, `stop()` gives a reason to give up, or the time is over. */
async function waitFor(check: () => Promise<boolean>, timeoutMs: number, stop: () => string | null): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reason = stop();
    if (reason) return reason;
    if (await check()) return null;
    if (Date.now() > deadline) return `no success within ${timeoutMs} ms`;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** dovecot.conf for one instance in `dir` on `port`. */
function config(dir: string, port: number, owner: { uid: number; gid: number }, tls?: DovecotOptions['tls']): string {
  return `# Written by test/helpers/dovecot.ts for one test instance.
protocols = imap
listen = 127.0.0.1
instance_name = skadi-test-${port}
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
auth_verbose = yes
auth_failure_delay = 0
${tls ? `ssl = yes\nssl_cert = <${tls.certFile}\nssl_key = <${tls.keyFile}` : 'ssl = no'}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = ${owner.uid}
mail_location = maildir:~/Maildir
mail_max_userip_connections = 100
mailbox_idle_check_interval = 1 secs
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/passwd
}
userdb {
  driver = static
  args = uid=${owner.uid} gid=${owner.gid} home=${dir}/home/%u
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
}
`;
}

/** The temp dir with config and passwd-file, owned by the mail user. */
function prepareDir(port: number, users: Record<string, string>, tls?: DovecotOptions['tls']): string {
  const dir = fs.mkdtempSync('/tmp/skadi-dovecot-'); // not os.tmpdir(): see the socket path trap above
  const owner = mailOwner();
  for (const sub of ['run', 'state', 'home']) fs.mkdirSync(path.join(dir, sub));
  fs.chownSync(path.join(dir, 'home'), owner.uid, owner.gid);
  fs.chownSync(dir, owner.uid, owner.gid);
  fs.chmodSync(dir, 0o755);
  const lines = Object.entries(users).map(([user, password]) => `${user}:{PLAIN}${password}\n`);
  fs.writeFileSync(path.join(dir, 'passwd'), lines.join(''), { mode: 0o644 });
  fs.writeFileSync(path.join(dir, 'dovecot.conf'), config(dir, port, owner, tls));
  return dir;
}

/** Runs `fn` on a logged-in IMAP session of the user, logging out afterwards. */
async function withClient<T>(port: number, user: string, pass: string, fn: (client: ImapFlow) => Promise<T>): Promise<T> {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port,
    secure: false,
    doSTARTTLS: false,
    auth: { user, pass },
    logger: false,
    connectionTimeout: 5000,
    greetingTimeout: 3000,
  });
  client.on('error', () => undefined); // the awaited calls reject anyway; an unheard 'error' event would crash the worker
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.logout().catch(() => client.close());
  }
}

/** Every mail of a mailbox, opened read-only (EXAMINE) so that no flag changes. */
async function listMessages(client: ImapFlow, mailbox: string): Promise<DovecotMessage[]> {
  const box = await client.mailboxOpen(mailbox, { readOnly: true });
  if (box.exists === 0) return [];
  const out: DovecotMessage[] = [];
  for await (const m of client.fetch('1:*', { uid: true, flags: true, envelope: true })) {
    out.push({
      uid: m.uid,
      flags: [...(m.flags ?? [])].filter((f) => f !== '\\Recent'),
      subject: m.envelope?.subject ?? '',
      messageId: m.envelope?.messageId ?? '',
    });
  }
  return out;
}

/** One Dovecot master process in the foreground, its stderr kept in `output`. */
class Instance {
  readonly child: ChildProcess;
  output = '';
  exited = false;

  constructor(conf: string) {
    this.child = spawn(DOVECOT, ['-F', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.once('exit', () => (this.exited = true));
    this.child.once('error', (err) => ((this.output += `spawn failed: ${err.message}\n`), (this.exited = true)));
    live.add(this);
  }

  /** SIGTERM and wait for the master to exit; SIGKILL its whole process group if it does not in time. */
  async stop(): Promise<void> {
    if (!this.exited) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.kill(), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    live.delete(this);
  }

  /** SIGKILLs the master and every process it started (its own process group, thanks to `detached`). */
  kill(): void {
    try {
      process.kill(-this.child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Instances still running, killed when the test worker exits without stop(). */
const live = new Set<Instance>();
process.once('exit', () => {
  for (const instance of live) instance.kill();
});

/** Starts Dovecot and waits until the port accepts connections and a login works. */
async function launch(dir: string, port: number, user: string, pass: string): Promise<Instance> {
  const instance = new Instance(path.join(dir, 'dovecot.conf'));
  const exitedReason = () => (instance.exited ? 'dovecot exited' : null);
  const login = () => withClient(port, user, pass, async () => true).catch(() => false);
  const failure =
    (await waitFor(() => listens(port), READY_TIMEOUT_MS, exitedReason)) ?? (await waitFor(login, READY_TIMEOUT_MS, exitedReason));
  if (failure) {
    await instance.stop();
    throw new Error(`Dovecot on port ${port} did not get ready (${failure}); its log:\n${instance.output}${fileLog(dir)}`);
  }
  return instance;
}

/** The log file of the Dovecot in `dir` ('' when there is none yet). */
function fileLog(dir: string): string {
  const file = path.join(dir, 'dovecot.log');
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
}

/** A temp dir and a running Dovecot on a free port; tries another port if someone took it between lookup and bind. */
async function launchOnFreePort(
  users: Record<string, string>,
  user: string,
  pass: string,
  tls?: DovecotOptions['tls'],
): Promise<{ dir: string; port: number; instance: Instance }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const dir = prepareDir(port, users, tls);
    try {
      return { dir, port, instance: await launch(dir, port, user, pass) };
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      if (attempt >= 3 || !/Address already in use/.test(String(err))) throw err;
    }
  }
}

/** Starts a Dovecot of the test's own; resolves once an IMAP login works. */
export async function startDovecot(options: DovecotOptions = {}): Promise<Dovecot> {
  if (!dovecotAvailable()) throw new Error(`${DOVECOT} is missing: apt-get install dovecot-imapd`);
  if (process.getuid?.() !== 0) throw new Error('startDovecot() needs root: it chowns the mail to the dovecot user');
  const users = options.users ?? { skadi: 'secret' };
  const [user, password] = Object.entries(users)[0];
  const started = await launchOnFreePort(users, user, password, options.tls);
  const { dir, port } = started;
  let instance = started.instance;
  let finalLog: string | null = null; // kept by stop(), which removes the file
  const readLog = () => finalLog ?? fileLog(dir);
  const client = <T>(fn: (c: ImapFlow) => Promise<T>) => withClient(port, user, password, fn);
  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    url: `imap://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}`,
    dir,
    async append(raw, mailbox = 'INBOX') {
      await client(async (c) => {
        if (mailbox.toUpperCase() !== 'INBOX') await c.mailboxCreate(mailbox);
        await c.append(mailbox, raw);
      });
    },
    messages: (mailbox = 'INBOX') => client((c) => listMessages(c, mailbox)),
    async restart(options = {}) {
      if (options.kill) {
        // Every process of the instance at once, the open IMAP sessions included (a clean stop may leave them serving).
        const exited = new Promise((r) => instance.child.once('exit', r));
        instance.kill();
        await exited;
      } else await instance.stop();
      // the master reaps its children before it exits, so this is only a safety net against a slow kernel
      const failure = await waitFor(
        () => bindable(port),
        STOP_TIMEOUT_MS,
        () => null,
      );
      if (failure) throw new Error(`port ${port} still taken after Dovecot stopped; its log:\n${readLog()}`);
      instance = await launch(dir, port, user, password);
    },
    async stop() {
      await instance.stop();
      finalLog = readLog() + instance.output;
      fs.rmSync(dir, { recursive: true, force: true });
    },
    log: () => finalLog ?? readLog() + instance.output,
  };
}
