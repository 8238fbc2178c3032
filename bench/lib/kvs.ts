/** Control-plane calls the benchmark needs, as raw JSON POSTs (what the AWS SDK sends, unsigned). */

export async function createStream(url: string, name: string): Promise<void> {
  const res = await fetch(`${url}/createStream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ StreamName: name, DataRetentionInHours: 24, MediaType: 'video/h264' }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`createStream ${name}: ${res.status} ${text}`);
}

/** Creates the streams, a few requests at a time. */
export async function createStreams(url: string, names: readonly string[], concurrency = 16): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < names.length) await createStream(url, names[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
}
