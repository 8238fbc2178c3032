/** Control-plane calls the benchmark needs, as JSON POSTs (signed when the server asks for it). */
import { type ClientSecurity, postJson } from './security.js';

const OPEN: ClientSecurity = { mode: 'off' };

export async function createStream(url: string, name: string, sec: ClientSecurity = OPEN): Promise<void> {
  const { status, text } = await postJson(sec, url, 'createStream', { StreamName: name, DataRetentionInHours: 24, MediaType: 'video/h264' });
  if (status !== 200) throw new Error(`createStream ${name}: ${status} ${text}`);
}

/** Creates the streams, a few requests at a time. */
export async function createStreams(url: string, names: readonly string[], sec: ClientSecurity = OPEN, concurrency = 16): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < names.length) await createStream(url, names[next++]!, sec);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
}
