/** A TCP proxy in front of a real service, to cut and restore the connection during a test (an outage). */
import net from 'node:net';

/** A running proxy. */
export interface TcpProxy {
  port: number;
  /** Drops every open connection and refuses new ones until resumed. */
  cut(): void;
  /** Drops the one connection whose next request contains `marker` (before forwarding it), once. */
  cutWhen(marker: string): void;
  /** Lets the next packet containing marker through (so the statement runs), then breaks the connection instead of answering. */
  cutAfter(marker: string): void;
  resume(): void;
  close(): Promise<void>;
}

/** Starts a proxy on a free loopback port forwarding to targetPort. */
export async function startProxy(targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let down = false;
  let armed: string | null = null;
  let armedAfter: string | null = null;
  const server = net.createServer((client) => {
    if (down) return client.destroy();
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    let dropReply = false;
    client.on('data', (chunk: Buffer) => {
      if (armed !== null && chunk.includes(armed)) {
        armed = null;
        client.destroy();
        upstream.destroy();
        return;
      }
      if (armedAfter !== null && chunk.includes(armedAfter)) {
        armedAfter = null;
        dropReply = true; // the statement runs (and commits); its answer never arrives
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (dropReply) {
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
    },
    cutWhen(marker) {
      armed = marker;
    },
    cutAfter(marker) {
      armedAfter = marker;
    },
    resume() {
      down = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
