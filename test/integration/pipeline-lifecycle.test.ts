/**
 * Pipeline lifecycle edge cases, each in its own forked Node process: exiting while a pipeline
 * plays, dropping one without stop under --expose-gc, stopping while events are queued, a
 * close overtaken by its end of stream,
 * 100 start/stop cycles without growing memory, and pipelines in Worker threads.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';

const CHILD = path.resolve('test/fixtures/lifecycle-child.mjs');

function runChild(scenario: string, flags: string[] = []): Promise<{ code: number | null; lines: Array<Record<string, unknown>>; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...flags, CHILD, scenario], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, lines, stderr: err });
    });
  });
}

it('exits cleanly when the process exits while a pipeline is playing', async () => {
  const r = await runChild('exit-while-playing');
  expect(r.code, r.stderr).toBe(0);
  expect(r.lines).toEqual([{ started: true }]);
});

it('lets the process end by itself after a pipeline finished without stop()', async () => {
  const r = await runChild('exit-at-end-of-script');
  expect(r.code, r.stderr).toBe(0);
  expect(r.lines).toEqual([{ finished: true }]);
});

it('survives a pipeline dropped without stop() and collected', async () => {
  const r = await runChild('drop-without-stop', ['--expose-gc']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.lines).toEqual([{ dropped: true }]);
});

it('stops at once while bus messages are still queued', async () => {
  const r = await runChild('stop-while-events-queued');
  expect(r.code, r.stderr).toBe(0);
  expect(r.lines[0]).toMatchObject({ stopped: true });
});

it('finishes a close whose end of stream arrives after it, and exits by itself', async () => {
  const r = await runChild('close-racing-eos');
  expect(r.code, r.stderr).toBe(0);
  expect(r.lines).toEqual([{ closed: 100 }]);
});

it('does not grow in memory over 100 kvssink upload start/stop cycles', async () => {
  const r = await runChild('cycles', ['--expose-gc']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.lines[0]!.persisted).toBe(100);
  const [after20, after60, after100] = r.lines[0]!.rss as number[];
  // Warm-up growth comes early; over the last 40 cycles a leak of even 100 KiB per pipeline
  // would show as 4 MiB (Node 24 grows ~2-4 MiB over cycles 20-60, ~0.5 MiB over 60-100).
  expect(after100! - after20!).toBeLessThan(16 * 1024 * 1024);
  expect(after100! - after60!).toBeLessThan(4 * 1024 * 1024);
});

it('delivers the end of stream even when a flood of bus messages overflows the queue to JS', async () => {
  const r = await runChild('eos-after-flood');
  expect(r.code, r.stderr).toBe(0);
  expect(r.lines[0]).toMatchObject({ finished: true });
  const stats = r.lines[0]!.stats as { messagesDelivered: number; messagesDropped: number };
  expect(stats.messagesDropped).toBeGreaterThan(0); // the flood really overflowed the queue
});

it('runs pipelines inside Worker threads', async () => {
  const r = await runChild('worker');
  expect(r.code, r.stderr).toBe(0);
  expect(r.lines[0]).toEqual({ results: ['done', 'done'] });
});
