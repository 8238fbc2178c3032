/**
 * sealChunks feeds the cipher in 16 KiB pieces whatever the chunking of the fragment: every
 * chunking of the same bytes opens to those bytes, and a changed byte is refused.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { SEAL_OVERHEAD, openSealed, sealChunks } from '../../../lib/service/storage/fragment-cipher.js';

const key = randomBytes(32);

it('opens to the original bytes for any chunking, sizes around the 16 KiB piece included', () => {
  const sizes = fc.array(fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 16_380, max: 16_390 }), fc.integer({ min: 0, max: 70_000 })), { maxLength: 40 });
  fc.assert(
    fc.property(sizes, (lengths) => {
      const chunks = lengths.map((n) => randomBytes(n));
      const plain = Buffer.concat(chunks);
      const sealed = Buffer.concat(sealChunks(key, 7, 42, chunks));
      expect(sealed.length).toBe(plain.length + SEAL_OVERHEAD);
      expect(openSealed(key, 7, 42, sealed).equals(plain)).toBe(true);
    }),
    { seed: 1, numRuns: 200 },
  );
});

it('refuses a changed byte, and a fragment moved to another sequence number', () => {
  const chunks = [randomBytes(10), randomBytes(20_000), randomBytes(5)];
  const sealed = Buffer.concat(sealChunks(key, 1, 2, chunks));
  expect(() => openSealed(key, 1, 3, sealed)).toThrow();
  sealed[100] ^= 1;
  expect(() => openSealed(key, 1, 2, sealed)).toThrow();
});
