/** Messages between the benchmark driver and its forked load-generator workers. */

export interface WorkerStream {
  name: string;
  /** Where in each second this stream sends its fragment, ms (streams are staggered across the second). */
  offsetMs: number;
  /** Which clip fragment the stream starts with (so the streams do not all send the keyframe-heavy one together). */
  clipStart: number;
}

export interface PrepareMessage {
  type: 'prepare';
  host: string;
  port: number;
  /** TLS and signing, as the server asks for them. */
  security: import('./security.js').ClientSecurity;
  clipFile: string;
  clipSpec: import('./media.js').ClipSpec;
  streams: WorkerStream[];
}

export interface GoMessage {
  type: 'go';
  /** Epoch ms of second 0: stream s sends fragment n at t0 + n * 1000 + offsetMs. */
  t0: number;
  warmupMs: number;
  measureMs: number;
  /** After the window, how long fragments keep flowing while measured ones still wait for PERSISTED. */
  drainMs: number;
}

export interface ReadyMessage {
  type: 'ready';
  connected: number;
  errors: string[];
}

export interface ResultMessage {
  type: 'result';
  streams: number;
  /** Fragments due inside the measurement window. */
  measured: number;
  persisted: number;
  /** Measured fragments without a PERSISTED ack by the end of the drain. */
  lost: number;
  errorAcks: number;
  errorSamples: string[];
  /** PERSISTED ack time - time the fragment's last byte left the socket, ms (persisted fragments). */
  latencies: number[];
  /** The slowest persisted fragments: [due time - t0, latency], ms. */
  slowest: Array<[number, number]>;
  /** PERSISTED ack time - due time, ms (persisted fragments). */
  endToEnd: number[];
  /** Last byte handed to the kernel - write issued, ms. */
  writeMs: number[];
  /** Write issued - due time, ms: how late the generator itself was. */
  lateness: number[];
  persistedBytes: number;
  offeredBytes: number;
  /** CPU time the worker used during the window, % of one core. */
  cpuPercent: number;
  /** Event-loop delay of the worker during the window, p99 ms. */
  loopDelayP99Ms: number;
  maxQueuedBytes: number;
  connectionErrors: string[];
}

export type ToWorker = PrepareMessage | GoMessage;
export type FromWorker = ReadyMessage | ResultMessage;
