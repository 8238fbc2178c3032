/**
 * Fragment numbers are fixed-width decimal strings so that comparing them as strings (as AWS
 * clients do) gives the same order as comparing the sequence numbers they encode.
 */
export const FRAGMENT_NUMBER_WIDTH = 47;

const DIGITS = FRAGMENT_NUMBER_WIDTH - 1;
const PATTERN = /^1\d{46}$/;

export function formatFragmentNumber(seq: number): string {
  if (!Number.isSafeInteger(seq) || seq < 0) {
    throw new RangeError(`invalid fragment sequence number: ${seq}`);
  }
  return '1' + String(seq).padStart(DIGITS, '0');
}

/** The sequence number encoded in a fragment number, or undefined if it is not a valid one. */
export function parseFragmentNumber(s: string): number | undefined {
  if (typeof s !== 'string' || !PATTERN.test(s)) return undefined;
  const digits = s.slice(1).replace(/^0+(?=\d)/, '');
  const seq = Number(digits);
  if (!Number.isSafeInteger(seq) || String(seq) !== digits) return undefined;
  return seq;
}
