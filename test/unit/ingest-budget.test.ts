import { expect, it } from 'vitest';
import { IngestBudget } from '../../lib/service/ingest/ingest-budget.js';

it('is exhausted at its limit and wakes waiters once bytes are released below it', async () => {
  const b = new IngestBudget(100);
  b.take(60);
  expect(b.exhausted).toBe(false);
  await b.available(); // resolves at once below the limit
  b.take(50);
  expect(b.exhausted).toBe(true);
  let woke = false;
  const waiting = b.available().then(() => (woke = true));
  b.release(5); // 105: still exhausted
  await Promise.resolve();
  expect(woke).toBe(false);
  b.release(20); // 85
  await waiting;
  expect(woke).toBe(true);
  expect(b.usedBytes).toBe(85);
});
