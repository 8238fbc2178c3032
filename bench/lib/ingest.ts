/** PutMedia of a pre-encoded clip through the library's client, as fast as possible or paced. */
import { putMedia } from '../../lib/producer/put-media-client.js';
import { type Clip, clusterHead } from './media.js';
import { sleep } from './util.js';

/** Sends `loops` passes of the clip starting at producer time t0; `paced`: each frame at its own time. */
export async function ingestClip(url: string, stream: string, clip: Clip, t0: number, loops: number, paced: boolean, stop = () => false): Promise<void> {
  const session = putMedia({ endpoint: url, streamName: stream, timecodeType: 'ABSOLUTE' });
  await session.write(clip.header);
  outer: for (let l = 0; l < loops; l++) {
    for (const f of clip.fragments) {
      if (stop()) break outer;
      const start = t0 + l * clip.durationMs + f.startMs;
      if (paced && start > Date.now()) await sleep(start - Date.now());
      await session.write(clusterHead(f.body.length, start));
      for (const fr of f.frames) {
        if (paced && start + fr.offsetMs > Date.now()) await sleep(start + fr.offsetMs - Date.now());
        await session.write(fr.bytes);
      }
    }
  }
  await session.end();
}
