/** A local HTTP receiver of job callbacks that records what reached it, and answers in one of a few hostile ways. */
import http from 'node:http';
import type net from 'node:net';

/** How the sink answers: 200, a redirect, an endless body (fast or dripping), or never. */
export type SinkMode =
  | { kind: 'ok' }
  | { kind: 'redirect'; location: string }
  | { kind: 'endless'; chunkBytes: number; maxBytes: number }
  | { kind: 'drip' }
  | { kind: 'silent' };

/** One request the sink received. */
export interface SinkRequest {
  body: string;
  headers: http.IncomingHttpHeaders;
  url: string;
}

/** A running sink. */
export interface CallbackSink {
  url: string;
  port: number;
  /** TCP connections accepted (a refused callback must not even connect). */
  connections: number;
  requests: SinkRequest[];
  /** Body bytes written by endless and drip answers, and when the caller closed each answer (ms since epoch). */
  bytesSent: number;
  closedAt: number[];
  close(): Promise<void>;
}

/** Writes an endless body as fast as the caller reads it (up to maxBytes), counting the bytes. */
async function endless(res: http.ServerResponse, sink: CallbackSink, chunk: Buffer, maxBytes: number): Promise<void> {
  while (!res.destroyed && sink.bytesSent < maxBytes) {
    sink.bytesSent += chunk.length;
    if (!res.write(chunk)) await new Promise((r) => (res.once('drain', r), res.once('close', r)));
  }
  res.end();
}

/** Writes one byte every 100 ms until the caller goes away. */
function drip(res: http.ServerResponse, sink: CallbackSink): void {
  const timer = setInterval(() => {
    sink.bytesSent++;
    res.write('.');
  }, 100);
  res.once('close', () => clearInterval(timer));
}

function answer(mode: SinkMode, res: http.ServerResponse, sink: CallbackSink): void {
  res.once('close', () => sink.closedAt.push(Date.now()));
  if (mode.kind === 'ok') res.end('ok');
  else if (mode.kind === 'redirect') res.writeHead(302, { location: mode.location }).end();
  else if (mode.kind === 'endless')
    res.writeHead(200, { 'content-type': 'application/octet-stream' }),
      void endless(res, sink, Buffer.alloc(mode.chunkBytes, 120), mode.maxBytes);
  else if (mode.kind === 'drip') res.writeHead(200, { 'content-type': 'text/plain' }), drip(res, sink);
}

/** Starts a sink on host (a loopback address) and port (0: any free one). */
export async function startCallbackSink(mode: SinkMode = { kind: 'ok' }, host = '127.0.0.1', port = 0): Promise<CallbackSink> {
  const server = http.createServer();
  const sockets = new Set<net.Socket>();
  const sink = { connections: 0, requests: [] as SinkRequest[], bytesSent: 0, closedAt: [] as number[] } as CallbackSink;
  server.on('connection', (socket) => {
    sink.connections++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('request', (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      sink.requests.push({ body, headers: req.headers, url: req.url ?? '' });
      answer(mode, res, sink);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  sink.port = (server.address() as net.AddressInfo).port;
  sink.url = `http://${host}:${sink.port}/hook`;
  sink.close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((r) => server.close(r));
  };
  return sink;
}
