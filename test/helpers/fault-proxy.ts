/**
 * A TCP proxy on 127.0.0.1 that injects network faults between a client (kvssink, the relay)
 * and a server (openkvs, an RTSP camera): it delays, cuts, stalls or resets a connection once a
 * chosen number of bytes has gone one way (client to server unless the fault says 'down').
 *
 * Which connection gets which fault is decided by a plan, asked once per connection when its
 * first bytes arrive (so a plan can pick PutMedia connections by their request line).
 */
import net from 'node:net';

/** Which way `atByte` counts: client to server (default) or server to client. */
type Direction = { direction?: 'up' | 'down' };

export type Fault =
  /** Hold every chunk, both ways, this long before passing it on. */
  | { kind: 'delay'; ms: number }
  /** Close both sides (FIN) once `atByte` bytes went that way. */
  | ({ kind: 'cut'; atByte: number } & Direction)
  /** Reset both sides (RST) once `atByte` bytes went that way. */
  | ({ kind: 'reset'; atByte: number } & Direction)
  /** Pass nothing either way from `atByte` on, for `ms` (for good when omitted), then go on. */
  | ({ kind: 'stall'; atByte: number; ms?: number } & Direction);

export interface ConnectionInfo {
  /** 0-based, counting every connection the proxy accepted. */
  index: number;
  /** The first bytes the client sent (e.g. "POST /putMedia HTTP/1.1 ..."), as latin1. */
  head: string;
}

export type FaultPlan = (connection: ConnectionInfo) => Fault | undefined;

export interface FaultProxy {
  port: number;
  url: string;
  /** Replaces the plan for connections accepted from now on. */
  setPlan(plan: FaultPlan): void;
  /** Faults that took effect (a byte-offset fault only counts once its offset was reached). */
  applied: Array<{ connection: number; fault: Fault }>;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/** A plan giving the n-th PutMedia connection `faults[n]` (none when undefined or past the end). */
export function onPutMedia(...faults: Array<Fault | undefined>): FaultPlan {
  let n = 0;
  return ({ head }) => (/^POST \S*\/putMedia /i.test(head) ? faults[n++] : undefined);
}

export async function startFaultProxy(target: { host?: string; port: number }, plan: FaultPlan = () => undefined): Promise<FaultProxy> {
  let current = plan;
  let accepted = 0;
  const applied: FaultProxy['applied'] = [];
  const sockets = new Set<net.Socket>();

  const server = net.createServer((client) => {
    const index = accepted++;
    const upstream = net.connect({ host: target.host ?? '127.0.0.1', port: target.port });
    sockets.add(client).add(upstream);
    for (const s of [client, upstream]) {
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());

    let fault: Fault | undefined;
    let decided = false;
    const sent = { up: 0, down: 0 };
    let stalled = false;
    const held: Array<{ to: net.Socket; chunk: Buffer }> = [];

    const pass = (to: net.Socket, chunk: Buffer): void => {
      if (chunk.length === 0 || to.destroyed) return;
      if (stalled) held.push({ to, chunk });
      else if (fault?.kind === 'delay') setTimeout(() => to.destroyed || to.write(chunk), fault.ms);
      else to.write(chunk);
    };

    const trigger = (f: Exclude<Fault, { kind: 'delay' }>): void => {
      applied.push({ connection: index, fault: f });
      if (f.kind === 'cut') {
        client.destroy();
        upstream.destroy();
      } else if (f.kind === 'reset') {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      } else {
        stalled = true;
        client.pause();
        upstream.pause();
        if (f.ms !== undefined) {
          setTimeout(() => {
            stalled = false;
            for (const h of held.splice(0)) pass(h.to, h.chunk);
            client.resume();
            upstream.resume();
          }, f.ms);
        }
      }
    };

    let triggered = false;
    const forward = (way: 'up' | 'down', to: net.Socket, chunk: Buffer): void => {
      if (fault && fault.kind !== 'delay' && !triggered && (fault.direction ?? 'up') === way) {
        const left = fault.atByte - sent[way];
        if (left < chunk.length) {
          const cut = Math.max(0, left);
          pass(to, chunk.subarray(0, cut));
          sent[way] += cut;
          triggered = true;
          trigger(fault);
          if (fault.kind === 'stall') forward(way, to, chunk.subarray(cut)); // held until the stall ends
          return;
        }
      }
      sent[way] += chunk.length;
      pass(to, chunk);
    };
    const decide = (head: Buffer): void => {
      if (decided) return;
      decided = true;
      fault = current({ index, head: head.subarray(0, 2048).toString('latin1') });
      if (fault?.kind === 'delay') applied.push({ connection: index, fault });
    };
    client.on('data', (chunk: Buffer) => {
      decide(chunk);
      forward('up', upstream, chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      decide(Buffer.alloc(0));
      forward('down', client, chunk);
    });
    // A half-close follows the data it comes after (which a delay or a stall may still hold).
    const endLater = (to: net.Socket) => () => {
      const end = (): void => {
        if (stalled) setTimeout(end, 50);
        else to.end();
      };
      setTimeout(end, fault?.kind === 'delay' ? fault.ms : 0);
    };
    client.on('end', endLater(upstream));
    upstream.on('end', endLater(client));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    setPlan: (p) => {
      current = p;
    },
    applied,
    connections: () => accepted,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
