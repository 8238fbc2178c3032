// Child process for sigkill.test.ts: appends fragments to several streams as fast as it can, printing
// one line per acknowledged append, until the parent kills it with SIGKILL.
// Usage: node crash-child.mjs <compiled storage module dir> <data dir>
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [moduleDir, dataDir] = process.argv.slice(2);
const { openDatabase } = await import(pathToFileURL(join(moduleDir, 'database.js')).href);
const { FragmentStore } = await import(pathToFileURL(join(moduleDir, 'fragment-store.js')).href);

const db = openDatabase(join(dataDir, 'index.db'));
const store = await FragmentStore.open({
  dataDir,
  db,
  retentionMs: () => 3_600_000,
  fileMaxBytes: 200_000, // rotate often, so that crashes also land around new files
});
const header = { ebml: Buffer.from('1a45dfa3', 'hex'), tracks: Buffer.from('1654ae6b', 'hex') };

async function run(streamId) {
  for (;;) {
    const seq = store.nextSeq();
    const bytes = randomBytes(randomInt(1, 60_000));
    const third = Math.ceil(bytes.length / 3);
    const chunks = [bytes.subarray(0, third), bytes.subarray(third, 2 * third), bytes.subarray(2 * third)];
    const now = Date.now();
    const f = await store.append({
      streamId,
      seq,
      producerTimestampMs: now,
      serverTimestampMs: now,
      durationMs: 1000,
      header,
      chunks,
      durable: streamId % 4 !== 0,
    });
    const sha1 = createHash('sha1').update(bytes).digest('hex');
    process.stdout.write(`ack ${f.streamId} ${f.seq} ${sha1} ${bytes.length}\n`);
  }
}

process.stdout.write('ready\n');
await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map(run));
