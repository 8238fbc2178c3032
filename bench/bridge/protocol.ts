/** Messages between the bridge benchmark (parent) and its runner process (bench/bridge/runner.ts). */

export type RunnerJob =
  | { kind: 'idle' }
  | { kind: 'acks'; description: string; endpoint: string; idleMs: number }
  | { kind: 'flood'; description: string; spinUs: number; idleMs: number }
  | { kind: 'paced'; descriptions: string[]; endpoint: string };

export interface AckCounts {
  BUFFERING: number;
  RECEIVED: number;
  PERSISTED: number;
  ERROR: number;
}

export interface AcksResult {
  kind: 'acks';
  counts: AckCounts;
  /** From start() to the first / last fragment-ack event, ms. */
  firstAckMs: number;
  lastAckMs: number;
  /** start() to `finished` (or giving up), ms. */
  wallMs: number;
  /** CPU of the whole process over wallMs, ms. */
  cpuMs: number;
  /** `finished` resolved (EOS reached JS). */
  eos: boolean;
  fragmentsDropped: number;
  errors: string[];
  messagesDelivered: number;
  messagesDropped: number;
  maxRssKiB: number;
}

export interface FloodResult {
  kind: 'flood';
  levelMessages: number;
  otherMessages: number;
  firstMs: number;
  lastMs: number;
  wallMs: number;
  cpuMs: number;
  /** `finished` settled (the EOS message reached JS). */
  finished: boolean;
  eosEvent: boolean;
  /** stop() resolved within 5 s. */
  stopped: boolean;
  stopMs: number;
  messagesDelivered: number;
  messagesDropped: number;
  maxRssKiB: number;
}

export interface PacedSnapshot {
  acks: AckCounts;
  fragmentsDropped: number;
  errors: number;
  messagesDelivered: number;
  messagesDropped: number;
  /** kvssink-stream-ready messages seen. */
  ready: number;
}

export type RunnerMessage =
  | { type: 'started' }
  | { type: 'ready' }
  | { type: 'result'; result: AcksResult | FloodResult }
  | { type: 'snapshot'; snapshot: PacedSnapshot }
  | { type: 'stopped'; snapshot: PacedSnapshot; stopMs: number; errors: string[]; memory: NodeJS.MemoryUsage }
  | { type: 'failed'; message: string };

export type ParentMessage = { cmd: 'snapshot' } | { cmd: 'stop' };
