/**
 * `openkvs relay --config cameras.yaml [--status-port 9090]`: keeps every camera of the config
 * streaming. SIGHUP reloads the config (a bad new config is reported and the running one
 * kept); SIGINT/SIGTERM drain every camera and exit 0 (a second one exits at once).
 */
import { loadRelayConfig } from '../relay/config.js';
import { Relay } from '../relay/relay.js';
import { startStatusServer, type StatusServer } from '../relay/status-server.js';

export interface RelayCommandOptions {
  config: string;
  statusPort?: number;
  statusHost: string;
}

const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

/** Resolves with the exit code once the relay has stopped. */
export async function runRelay(o: RelayCommandOptions): Promise<number> {
  const config = await loadRelayConfig(o.config); // a bad config throws: the caller prints it and exits 1
  const relay = new Relay();
  relay.on('state', (camera, state) => log(`camera ${camera}: ${state}`));
  relay.on('log', (camera, message) => log(`camera ${camera}: ${message}`));

  let status: StatusServer | undefined;
  if (o.statusPort !== undefined) {
    status = await startStatusServer(() => relay.status(), o.statusPort, o.statusHost);
    log(`status on http://${o.statusHost}:${status.port}/status and /metrics`);
  }
  await relay.start(config);
  log(`relaying ${config.cameras.length} camera(s) from ${o.config}; SIGHUP reloads, Ctrl-C stops`);

  let reloading = Promise.resolve();
  const onHup = () => {
    reloading = reloading.then(async () => {
      try {
        const next = await loadRelayConfig(o.config);
        const r = await relay.reload(next);
        log(`reloaded ${o.config}: added [${r.added.join(', ')}], removed [${r.removed.join(', ')}], restarted [${r.restarted.join(', ')}], unchanged [${r.unchanged.join(', ')}]`);
      } catch (err) {
        log(`reload failed, keeping the running config: ${(err as Error).message}`);
      }
    });
  };
  process.on('SIGHUP', onHup);

  await new Promise<void>((resolve) => {
    let signals = 0;
    const onStop = (signal: NodeJS.Signals) => {
      if (++signals > 1) {
        log(`${signal} again, exiting now`);
        process.exit(130);
      }
      log(`${signal}: draining every camera (again to exit now)`);
      resolve();
    };
    process.on('SIGINT', onStop);
    process.on('SIGTERM', onStop);
  });
  process.off('SIGHUP', onHup);
  await reloading;
  await relay.stop();
  await status?.close();
  log('stopped');
  return 0;
}
