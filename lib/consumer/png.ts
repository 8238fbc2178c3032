/** A PNG file of an RGB, RGBA or GRAY8 frame (no filtering; zlib at speed level 1). */
import { crc32, deflateSync } from 'node:zlib';
import type { DecodedFrame } from './video-decoder.js';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const COLOUR = { GRAY8: [0, 1], RGB: [2, 3], RGBA: [6, 4] } as const;

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

export function encodePng(frame: DecodedFrame): Buffer {
  if (frame.format === 'I420') throw new Error('encodePng: I420 frames cannot be written as PNG (decode to RGB, RGBA or GRAY8)');
  const [colourType, channels] = COLOUR[frame.format];
  const rowBytes = frame.width * channels;
  const raw = Buffer.alloc((rowBytes + 1) * frame.height);
  for (let y = 0; y < frame.height; y++) {
    // filter type 0 (none), then the row without the stride's padding
    frame.data.copy(raw, y * (rowBytes + 1) + 1, frame.offsets[0]! + y * frame.strides[0]!, frame.offsets[0]! + y * frame.strides[0]! + rowBytes);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(frame.width, 0);
  ihdr.writeUInt32BE(frame.height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = colourType;
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 1 })), chunk('IEND', Buffer.alloc(0))]);
}
