import { describe, expect, it } from 'vitest';
import {
  FRAGMENT_NUMBER_WIDTH,
  formatFragmentNumber,
  parseFragmentNumber,
} from '../../../lib/service/storage/fragment-number.js';

describe('fragment numbers', () => {
  it('have a fixed width of 47 digits', () => {
    expect(FRAGMENT_NUMBER_WIDTH).toBe(47);
    for (const seq of [0, 1, 42, Date.now() * 1000, Number.MAX_SAFE_INTEGER]) {
      const s = formatFragmentNumber(seq);
      expect(s).toHaveLength(47);
      expect(s).toMatch(/^1\d{46}$/);
    }
    expect(formatFragmentNumber(7)).toBe('1' + '0'.repeat(45) + '7');
  });

  it('order as strings the way their sequence numbers order as numbers', () => {
    const seqs = [0, 9, 10, 99, 100, 123456789, 1_700_000_000_000_000, Number.MAX_SAFE_INTEGER];
    const shuffled = [...seqs].reverse().map(formatFragmentNumber);
    expect(shuffled.sort()).toEqual(seqs.map(formatFragmentNumber));
  });

  it('round-trip', () => {
    for (const seq of [0, 1, 10, 1_732_550_400_000_123, Number.MAX_SAFE_INTEGER]) {
      expect(parseFragmentNumber(formatFragmentNumber(seq))).toBe(seq);
    }
  });

  it('reject garbage', () => {
    const valid = formatFragmentNumber(12345);
    for (const bad of [
      '',
      '12345',
      valid.slice(1),
      valid + '0',
      '2' + valid.slice(1),
      valid.slice(0, 46) + 'x',
      ' ' + valid.slice(1),
      '1' + '9'.repeat(46), // not a safe integer
      '1' + '0'.repeat(30) + '9007199254740992', // MAX_SAFE_INTEGER + 1
      '-' + valid.slice(1),
    ]) {
      expect(parseFragmentNumber(bad), bad).toBeUndefined();
    }
  });

  it('refuse to format what is not a non-negative safe integer', () => {
    for (const bad of [-1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1]) {
      expect(() => formatFragmentNumber(bad)).toThrow(RangeError);
    }
  });
});
