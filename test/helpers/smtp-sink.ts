/** An in-process SMTP server that accepts every mail (or refuses some on request) and keeps it parsed. */
import type { AddressInfo } from 'node:net';
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

/** One received mail. */
export interface SinkMail {
  /** The address in the From header (the envelope MAIL FROM when there is none). */
  from: string;
  /** The envelope recipients (RCPT TO), Bcc included. */
  to: string[];
  subject: string;
  messageId: string;
  inReplyTo?: string;
  references: string[];
  text: string;
  html: string;
  raw: string;
}

/** A running SMTP sink. */
export interface SmtpSink {
  /** smtp://127.0.0.1:port */
  url: string;
  port: number;
  /** The mails received so far, in order. */
  mails: SinkMail[];
  /** Refuses the next `count` mails at the end of DATA with `code` (default 451, a temporary failure). */
  failNext(count: number, code?: number): void;
  close(): Promise<void>;
}

/** The first address of a parsed address header. */
function firstAddress(header: AddressObject | AddressObject[] | undefined): string | undefined {
  const list = Array.isArray(header) ? header : header ? [header] : [];
  return list.flatMap((h) => h.value).find((a) => a.address)?.address;
}

/** A parsed mail in the sink's shape. */
function toSinkMail(parsed: ParsedMail, session: SMTPServerSession, raw: string): SinkMail {
  const envelopeFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
  const references = parsed.references === undefined ? [] : ([] as string[]).concat(parsed.references);
  return {
    from: firstAddress(parsed.from) ?? envelopeFrom,
    to: session.envelope.rcptTo.map((r) => r.address),
    subject: parsed.subject ?? '',
    messageId: parsed.messageId ?? '',
    inReplyTo: parsed.inReplyTo,
    references,
    text: parsed.text ?? '',
    html: parsed.html || '',
    raw,
  };
}

/** Reads a DATA stream to its end. */
function readAll(stream: SMTPServerDataStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

/** An SMTP error with a reply code, as smtp-server sends it. */
function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

/** Starts a sink on 127.0.0.1 and a free port; no auth, and STARTTLS only when given a key and certificate. */
export async function startSmtpSink(options: { tls?: { key: string; cert: string } } = {}): Promise<SmtpSink> {
  const mails: SinkMail[] = [];
  const failures = { count: 0, code: 451 };
  const onData = async (stream: SMTPServerDataStream, session: SMTPServerSession): Promise<void> => {
    const raw = await readAll(stream);
    if (failures.count > 0) {
      failures.count--;
      throw smtpError(failures.code, `refused by the test sink (${failures.code})`);
    }
    mails.push(toSinkMail(await simpleParser(raw), session, raw.toString('utf8')));
  };
  const server = new SMTPServer({
    authOptional: true,
    ...(options.tls ? { key: options.tls.key, cert: options.tls.cert } : { disabledCommands: ['STARTTLS'] }),
    logger: false,
    disableReverseLookup: true, // no reverse DNS lookup of 127.0.0.1 per connection (smtp-server still waits 100 ms to greet)
    closeTimeout: 500, // close() would otherwise wait 30 s for pooled client connections
    onData: (stream, session, callback) => void onData(stream, session).then(() => callback(), callback),
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  server.on('error', () => undefined); // a client's broken connection is no failure of the sink
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    mails,
    failNext(count, code = 451) {
      failures.count = count;
      failures.code = code;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
