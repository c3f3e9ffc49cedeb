// The body reader on its own Koa server: the limit (413, with or without a declared length), what a refused body
// still lets the client read, and the 400s for bodies that are not what they claim to be.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import Koa, { type Context } from 'koa';
import { bodyReader } from '../../agent-api/body';
import { errorEdge } from '../../agent-api/errors';

const LIMIT = 1000;

interface Answer {
  status: number;
  body: any;
  /** Bytes the client had written when the answer arrived. */
  sent: number;
}

describe('the body reader', () => {
  let server: http.Server;
  let port: number;
  /** What the last request's handler saw (only set when the body was accepted). */
  let seen: { body: unknown; raw: string } | null;

  beforeAll(async () => {
    const app = new Koa();
    app.silent = true; // a request cut short is an expected error here, not one to print
    app.use(errorEdge);
    app.use(bodyReader(LIMIT));
    app.use((ctx) => {
      seen = { body: ctx.request.body, raw: ctx.request.rawBody };
      ctx.body = { ok: true };
    });
    server = http.createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  beforeEach(() => {
    seen = null;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** Sends a body (chunked when no length is given), in pieces until the server answers, and reads the answer. */
  function send(method: string, pieces: Buffer[], headers: Record<string, string | number> = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port,
        method,
        path: '/',
        agent: false,
        headers: { 'content-type': 'application/json', ...headers },
      });
      let sent = 0;
      let answered = false;
      req.on('response', (res) => {
        answered = true;
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null, sent }));
      });
      req.on('error', (err) => (answered ? undefined : reject(err)));
      let i = 0;
      const more = () => {
        while (!answered && i < pieces.length) {
          sent += pieces[i].length;
          if (!req.write(pieces[i++])) return void req.once('drain', more);
        }
        req.end();
      };
      more();
    });
  }

  const _json = (value: unknown) => [Buffer.from(JSON.stringify(value))];
  /** A JSON body of exactly n bytes. */
  const sized = (n: number) => [Buffer.from(`{"a":"${'x'.repeat(n - 8)}"}`)];

  it('accepts a body of exactly the limit, and keeps its raw text', async () => {
    const body = sized(LIMIT);
    expect(body[0].length).toBe(LIMIT);
    expect(await send('POST', body, { 'content-length': LIMIT })).toMatchObject({ status: 200, body: { ok: true } });
    expect(seen).toEqual({ body: { a: 'x'.repeat(LIMIT - 8) }, raw: body[0].toString() });
  });

  it('answers 413 one byte past the limit, declared or chunked, and never calls the route', async () => {
    const declared = await send('PUT', sized(LIMIT + 1), { 'content-length': LIMIT + 1 });
    expect(declared).toMatchObject({
      status: 413,
      body: { error: 'TooLarge', message: `The request body is larger than ${LIMIT} bytes.` },
    });
    const chunked = await send('PATCH', sized(LIMIT + 1));
    expect(chunked).toMatchObject({ status: 413, body: { error: 'TooLarge' } });
    expect(seen).toBeNull();
  });

  it('answers a declared length over the limit with 413 before any of the body comes', async () => {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let received = '';
    const answered = new Promise<void>((resolve) =>
      socket.on('data', (c) => ((received += c), received.includes('\r\n\r\n') && resolve())),
    );
    socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\n`);
    await answered; // headers only: waiting for body bytes would never answer
    expect(received).toMatch(/^HTTP\/1\.1 413 /);
    socket.destroy();
    expect(seen).toBeNull();
  });

  it('answers a long chunked body with 413 while the client is still sending it', async () => {
    const pieces = Array.from({ length: 160 }, () => Buffer.alloc(64 * 1024, 'x')); // 10 MB
    const answer = await send('POST', [Buffer.from('{"a":"'), ...pieces]);
    expect(answer).toMatchObject({ status: 413, body: { error: 'TooLarge' } });
    expect(answer.sent).toBeLessThan(10 * 1024 * 1024);
  });

  it('lets a client that declared a large body read the 413 instead of a broken pipe', async () => {
    const size = 2 * 1024 * 1024;
    const pieces = Array.from({ length: size / (64 * 1024) }, () => Buffer.alloc(64 * 1024, 'x'));
    // Written to its end even after the answer: the server reads and drops the rest.
    const answer = await new Promise<Answer>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers: { 'content-length': size } });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), sent: size }));
      });
      req.on('error', reject);
      for (const p of pieces) req.write(p);
      req.end();
    });
    expect(answer).toMatchObject({ status: 413, body: { error: 'TooLarge' } });
  });

  it('cuts the connection of a client that goes on sending far past what is dropped', async () => {
    // Declares 64 MB and sends it all: the server drops 32 MB and then closes the socket.
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`);
    let received = '';
    socket.on('data', (c) => (received += c));
    const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(received)));
    socket.on('error', () => undefined);
    const chunk = Buffer.alloc(256 * 1024, 'x');
    let written = 0;
    const pump = () => {
      while (!socket.destroyed && written < 64 * 1024 * 1024) {
        written += chunk.length;
        if (!socket.write(chunk)) return void socket.once('drain', pump);
      }
    };
    pump();
    expect(await closed).toContain('413');
    expect(written).toBeLessThan(64 * 1024 * 1024);
  });

  it('keeps a kept-alive connection open after a refused body was read to its end, past the drop deadline', async () => {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let received = '';
    socket.on('data', (c) => (received += c));
    const answers = async (n: number) => {
      for (let i = 0; i < 400 && (received.match(/HTTP\/1\.1 /g) ?? []).length < n; i++) await new Promise((r) => setTimeout(r, 25));
      return received.match(/HTTP\/1\.1 \d+/g) ?? [];
    };
    const big = 'x'.repeat(LIMIT + 1);
    socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n${big}`);
    expect(await answers(1)).toEqual(['HTTP/1.1 413']);
    // The server gives up dropping a refused body after 5 s; a body that ended before must not cost the connection.
    await new Promise((r) => setTimeout(r, 5500));
    expect(socket.destroyed).toBe(false);
    socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}');
    expect(await answers(2)).toEqual(['HTTP/1.1 413', 'HTTP/1.1 200']);
    socket.destroy();
  }, 20000);

  it('answers 400 to a body shorter than its declared length', async () => {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let received = '';
    socket.on('data', (c) => (received += c));
    socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"a":1}');
    socket.end(); // the client is done writing: 43 bytes never come
    await new Promise((resolve) => socket.once('close', resolve));
    // Node itself answers 400 to a request cut short (or the body reader does, with BadBody); never the route.
    if (received) expect(received).toMatch(/^HTTP\/1\.1 400/);
    expect(seen).toBeNull();
  });

  it('refuses a body that breaks off while it is read as BadBody (400), without calling the route', async () => {
    const req = new PassThrough();
    const ctx = { method: 'POST', get: () => '', req, request: {} } as unknown as Context;
    let called = false;
    const reading = bodyReader(LIMIT)(ctx, async () => void (called = true)).catch((err: unknown) => err);
    req.write('{"a":');
    req.destroy(new Error('the client went away'));
    expect(await reading).toMatchObject({ status: 400, code: 'BadBody', message: 'The request body could not be read completely.' });
    expect(called).toBe(false);
  });

  it('answers 400 to bodies that are not one JSON object', async () => {
    for (const text of ['{"a":', '[1,2]', 'null', '42', '"text"', 'true']) {
      const answer = await send('POST', [Buffer.from(text)]);
      expect({ text, ...answer, sent: 0 }).toEqual({
        text,
        status: 400,
        sent: 0,
        body: {
          error: 'InvalidJSON',
          message: text === '{"a":' ? 'The request body is not valid JSON.' : 'The request body must be a JSON object.',
        },
      });
    }
    expect(seen).toBeNull();
  });

  it('reads forms as forms, JSON sent as a form as JSON, and an empty body as {}', async () => {
    await send('POST', [Buffer.from('message=web1%20ls&x=1')], { 'content-type': 'application/x-www-form-urlencoded' });
    expect(seen?.body).toEqual({ message: 'web1 ls', x: '1' });
    await send('POST', [Buffer.from(' {"message":"web1 ls"}')], { 'content-type': 'application/x-www-form-urlencoded' });
    expect(seen?.body).toEqual({ message: 'web1 ls' });
    await send('POST', [Buffer.from('message=a')], { 'content-type': 'text/plain' }).then((a) => expect(a.status).toBe(400));
    await send('PUT', [Buffer.from('  \n ')]);
    expect(seen).toEqual({ body: {}, raw: '  \n ' });
  });

  it('does not read the body of other methods', async () => {
    const answer = await send('DELETE', [Buffer.from('{"a":1}')], { 'content-length': 7 });
    expect(answer).toMatchObject({ status: 200 });
    expect(seen).toEqual({ body: {}, raw: '' });
  });
});
