/**
 * Relay: keeps every camera of a config streaming, each in its own supervised pipeline
 * (camera.ts). `reload` applies a new config: added cameras start, removed ones drain and
 * stop, unchanged ones are left alone (a camera whose settings or connection changed restarts).
 */
import { EventEmitter } from 'node:events';
import { isDeepStrictEqual } from 'node:util';
import { Camera, type CameraState, type CameraStatus, type RelayConnection } from './camera.js';
import type { CameraConfig, RelayConfig } from './config.js';

export interface RelayEvents {
  /** `camera` changed state. */
  state: [camera: string, state: CameraState];
  /** A line about `camera` worth logging. */
  log: [camera: string, message: string];
}

export interface ReloadResult {
  added: string[];
  removed: string[];
  restarted: string[];
  unchanged: string[];
}

const connectionOf = (c: RelayConfig): RelayConnection => ({
  ...(c.endpoint ? { endpoint: c.endpoint } : {}),
  ...(c.region ? { region: c.region } : {}),
  ...(c.credentials ? { credentials: c.credentials } : {}),
  ...(c.caCert ? { caCert: c.caCert } : {}),
});

export class Relay extends EventEmitter<RelayEvents> {
  private readonly cameras = new Map<string, { camera: Camera; connection: RelayConnection }>();

  /** Starts every camera of the config (cameras already running are reconciled as in `reload`). */
  async start(config: RelayConfig): Promise<ReloadResult> {
    return this.reload(config);
  }

  async reload(config: RelayConfig): Promise<ReloadResult> {
    const connection = connectionOf(config);
    const wanted = new Map(config.cameras.map((c) => [c.name, c]));
    const result: ReloadResult = { added: [], removed: [], restarted: [], unchanged: [] };
    const stopping: Array<Promise<void>> = [];
    for (const [name, entry] of this.cameras) {
      const next = wanted.get(name);
      if (next && isDeepStrictEqual(next, entry.camera.config) && isDeepStrictEqual(connection, entry.connection)) {
        entry.camera.backoff = config.backoff;
        result.unchanged.push(name);
        continue;
      }
      (next ? result.restarted : result.removed).push(name);
      this.cameras.delete(name);
      stopping.push(entry.camera.stop());
    }
    // A restarted camera's old pipeline drains before the new one takes over its stream.
    await Promise.all(stopping);
    for (const [name, camera] of wanted) {
      if (this.cameras.has(name)) continue;
      if (!result.restarted.includes(name)) result.added.push(name);
      this.add(camera, connection, config);
    }
    return result;
  }

  /** Drains and stops every camera. */
  async stop(): Promise<void> {
    const all = [...this.cameras.values()];
    this.cameras.clear();
    await Promise.all(all.map((e) => e.camera.stop()));
  }

  status(): CameraStatus[] {
    return [...this.cameras.values()].map((e) => e.camera.status());
  }

  private add(config: CameraConfig, connection: RelayConnection, relay: RelayConfig): void {
    const camera = new Camera(config, connection, relay.backoff);
    camera.on('state', (state) => this.emit('state', config.name, state));
    camera.on('log', (message) => this.emit('log', config.name, message));
    this.cameras.set(config.name, { camera, connection });
    camera.start();
  }
}
