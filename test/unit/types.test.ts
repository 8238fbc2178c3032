/**
 * The public API's types (expectTypeOf) and every test file type-check: tsc over lib/ and test/.
 */
import { spawnSync } from 'node:child_process';
import { expect, expectTypeOf, it } from 'vitest';
import type { FragmentAck, Pipeline, PipelineError, PipelineEvents, UploadStats } from '../../lib/index.js';

it('type-checks lib/ and test/ (strict)', () => {
  const r = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'test/tsconfig.json'], { encoding: 'utf8' });
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
});

it('types Pipeline events by name', () => {
  expectTypeOf<PipelineEvents['fragment-ack']>().toEqualTypeOf<[FragmentAck]>();
  expectTypeOf<PipelineEvents['stats']>().toEqualTypeOf<[UploadStats]>();
  expectTypeOf<PipelineEvents['error']>().toEqualTypeOf<[PipelineError]>();
  expectTypeOf<FragmentAck['eventType']>().toEqualTypeOf<'BUFFERING' | 'RECEIVED' | 'PERSISTED' | 'ERROR'>();
  expectTypeOf<PipelineError['code']>().toEqualTypeOf<
    | 'KVS_ACCESS_DENIED'
    | 'KVS_STREAM_NOT_FOUND'
    | 'KVS_ACK_ERROR'
    | 'KVS_SERVICE_ERROR'
    | 'GST_ERROR'
    | 'NO_SUCH_ELEMENT'
    | 'NO_SUCH_PROPERTY'
    | 'INVALID_PROPERTY_VALUE'
    | 'PIPELINE_CLOSED'
  >();
  expectTypeOf<Pipeline['finished']>().toEqualTypeOf<Promise<void>>();
  expectTypeOf<Pipeline['start']>().returns.toEqualTypeOf<Promise<void>>();
});
