/**
 * Incremental Matroska parser for live streams (PutMedia bodies, GetMedia responses).
 *
 * Bytes are pushed in chunks of any size. Only element headers are decoded; media payloads are
 * handed on as slices of the pushed chunks, never copied. Segments and Clusters may have unknown
 * size: an unknown-size Cluster ends at the next level-1 element (or EBML header), an unknown-size
 * Segment at the next EBML header or the end of input. Sizes may be fixed-width vints.
 *
 * Levels: 0 = EBML header / Segment, 1 = Segment children, 2 = Cluster children,
 * 3 = BlockGroup children.
 */
import {
  ID,
  MkvError,
  TOP_LEVEL_IDS,
  idLength,
  readBlockHeader,
  readId,
  readUint,
  readVintSize,
  vintLength,
} from './ebml.js';

export interface BlockInfo {
  track: number;
  /** Timecode relative to the cluster, in TimecodeScale units. */
  timecode: number;
  keyframe: boolean;
  flags: number;
  /** Size of the frame data (the block payload after its header). */
  size: number;
  /** The frame data, only with `collectBlocks`. */
  data?: Buffer;
}

export interface MkvHandlers {
  /** A complete EBML header element (starts a new document). */
  onEbmlHeader?(element: Buffer): void;
  onSegmentStart?(): void;
  /** A complete level-1 element other than a Cluster (Info, Tracks, Tags, …), header included. */
  onTopElement?(id: number, element: Buffer): void;
  onClusterStart?(): void;
  onClusterTimecode?(timecode: number): void;
  onBlock?(block: BlockInfo): void;
  /** Every byte inside the current Cluster (child headers and payloads), in order, as slices. */
  onClusterData?(bytes: Buffer): void;
  onClusterEnd?(): void;
}

export interface MkvParserOptions {
  /** Largest element that is collected whole (metadata elements), bytes. */
  maxElementBytes?: number;
  /** Deliver frame data with each block (copies only when a frame spans chunks). */
  collectBlocks?: boolean;
}

type Mode = 'header' | 'collect' | 'pass' | 'block-head';

const SKIPPED_TOP_IDS: ReadonlySet<number> = new Set([ID.Void, ID.Cues, ID.CRC32]);

export class MkvStreamParser {
  private readonly handlers: MkvHandlers;
  private readonly maxElementBytes: number;
  private readonly collectBlocks: boolean;

  private offset = 0; // absolute offset of the next byte
  private level = 0;
  private segmentEnd: number | undefined; // absolute end offsets of open known-size containers
  private clusterEnd: number | undefined;
  private groupEnd: number | undefined;

  private mode: Mode = 'header';
  private readonly hdr = Buffer.alloc(12);
  private hdrLen = 0;
  private remaining = 0;
  private parts: Buffer[] = [];
  private collected = 0;
  private collectId = 0;
  private collectHeader: Buffer = Buffer.alloc(0);
  private blockSize = 0;

  constructor(handlers: MkvHandlers, options: MkvParserOptions = {}) {
    this.handlers = handlers;
    this.maxElementBytes = options.maxElementBytes ?? 16 * 1024 * 1024;
    this.collectBlocks = options.collectBlocks ?? false;
  }

  /** Bytes consumed so far. */
  get position(): number {
    return this.offset;
  }

  /** True while inside a Cluster. */
  get inCluster(): boolean {
    return this.level >= 2;
  }

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.mode === 'header') {
        if (this.hdrLen === 0) this.closeEnded();
        this.hdr[this.hdrLen++] = chunk[i++]!;
        this.offset++;
        this.tryHeader();
        continue;
      }
      const n = Math.min(this.remaining, chunk.length - i);
      const piece = chunk.subarray(i, i + n);
      i += n;
      this.offset += n;
      this.remaining -= n;
      this.payload(piece);
    }
  }

  /** End of input: closes open unknown-size containers; throws when an element is cut short. */
  end(): void {
    if (this.mode !== 'header' || this.hdrLen > 0) throw new MkvError('input ends inside an element');
    this.closeEnded();
    if (this.level === 3) throw new MkvError('input ends inside a BlockGroup');
    if (this.level >= 2) {
      if (this.clusterEnd !== undefined) throw new MkvError('input ends inside a cluster');
      this.closeCluster();
    }
    if (this.level === 1 && this.segmentEnd !== undefined) throw new MkvError('input ends inside a segment');
    this.level = 0;
  }

  private tryHeader(): void {
    const idLen = idLength(this.hdr[0]!);
    if (idLen === 0) throw new MkvError(`invalid element ID byte 0x${this.hdr[0]!.toString(16)} at offset ${this.offset - this.hdrLen}`);
    if (this.hdrLen <= idLen) return;
    const sizeLen = vintLength(this.hdr[idLen]!);
    if (sizeLen === 0) throw new MkvError(`invalid element size at offset ${this.offset - this.hdrLen}`);
    if (this.hdrLen < idLen + sizeLen) return;
    const id = readId(this.hdr, 0, idLen);
    const size = readVintSize(this.hdr, idLen, sizeLen);
    const header = Buffer.from(this.hdr.subarray(0, this.hdrLen));
    this.hdrLen = 0;
    this.element(id, size, header);
  }

  private element(id: number, size: number | undefined, header: Buffer): void {
    const start = this.offset - header.length;
    if (this.level === 3) return this.groupChild(id, size, header);
    if (this.level === 2) {
      if (this.clusterEnd === undefined && (TOP_LEVEL_IDS.has(id) || id === ID.EBML)) {
        this.closeCluster();
      } else {
        return this.clusterChild(id, size, header, start);
      }
    }
    if (this.level === 1) {
      if (id === ID.EBML && this.segmentEnd === undefined) {
        this.level = 0;
      } else {
        return this.segmentChild(id, size, header, start);
      }
    }
    if (id === ID.EBML) {
      if (size === undefined) throw new MkvError('EBML header with unknown size');
      return this.startCollect(id, size, header);
    }
    if (id === ID.Segment) {
      this.level = 1;
      this.segmentEnd = size === undefined ? undefined : this.offset + size;
      this.handlers.onSegmentStart?.();
      return this.afterElement();
    }
    if (id === ID.Void && size !== undefined) return this.startSkip(size);
    throw new MkvError(`expected an EBML header or a Segment, found element 0x${id.toString(16)} at offset ${start}`);
  }

  private segmentChild(id: number, size: number | undefined, header: Buffer, start: number): void {
    if (size !== undefined && this.segmentEnd !== undefined && this.offset + size > this.segmentEnd) {
      throw new MkvError(`element 0x${id.toString(16)} at offset ${start} overruns its Segment`);
    }
    if (id === ID.Cluster) {
      this.level = 2;
      this.clusterEnd = size === undefined ? undefined : this.offset + size;
      this.handlers.onClusterStart?.();
      return this.afterElement();
    }
    if (size === undefined) throw new MkvError(`element 0x${id.toString(16)} at offset ${start} has unknown size`);
    if (SKIPPED_TOP_IDS.has(id)) return this.startSkip(size);
    this.startCollect(id, size, header);
  }

  private clusterChild(id: number, size: number | undefined, header: Buffer, start: number): void {
    if (size === undefined) throw new MkvError(`cluster child 0x${id.toString(16)} at offset ${start} has unknown size`);
    if (this.clusterEnd !== undefined && this.offset + size > this.clusterEnd) {
      throw new MkvError(`element 0x${id.toString(16)} at offset ${start} overruns its Cluster`);
    }
    this.handlers.onClusterData?.(header);
    if (id === ID.Timecode) return this.startCollect(id, size, header);
    if (id === ID.SimpleBlock) return this.startBlock(size);
    if (id === ID.BlockGroup) {
      this.level = 3;
      this.groupEnd = this.offset + size;
      return this.afterElement();
    }
    this.startPass(size);
  }

  private groupChild(id: number, size: number | undefined, header: Buffer): void {
    if (size === undefined || this.offset + size > this.groupEnd!) throw new MkvError('invalid BlockGroup child');
    this.handlers.onClusterData?.(header);
    if (id === ID.Block) return this.startBlock(size);
    this.startPass(size);
  }

  private startCollect(id: number, size: number, header: Buffer): void {
    if (size > this.maxElementBytes) {
      throw new MkvError(`element 0x${id.toString(16)} of ${size} bytes is larger than ${this.maxElementBytes}`);
    }
    this.collectId = id;
    this.collectHeader = header;
    this.parts = [];
    this.collected = 0;
    this.begin('collect', size);
  }

  private startBlock(size: number): void {
    this.blockSize = size;
    this.parts = [];
    this.collected = 0;
    this.begin('block-head', size);
  }

  private startPass(size: number): void {
    this.begin('pass', size);
  }

  private startSkip(size: number): void {
    this.collectId = -1;
    this.parts = [];
    this.collected = 0;
    this.begin('collect', size);
  }

  private begin(mode: Mode, size: number): void {
    this.remaining = size;
    this.mode = mode;
    if (size === 0) this.finishPayload();
  }

  private payload(piece: Buffer): void {
    switch (this.mode) {
      case 'collect':
        if (this.collectId !== -1) this.parts.push(piece);
        break;
      case 'pass':
        this.handlers.onClusterData?.(piece);
        break;
      case 'block-head':
        this.parts.push(piece);
        this.collected += piece.length;
        if (!this.collectBlocks) {
          this.handlers.onClusterData?.(piece);
          if (this.collected >= 12 || this.remaining === 0) this.emitBlock();
        }
        break;
    }
    if (this.remaining === 0) this.finishPayload();
  }

  private emitBlock(): void {
    const head = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    const h = readBlockHeader(head);
    const info: BlockInfo = {
      track: h.track,
      timecode: h.timecode,
      flags: h.flags,
      keyframe: (h.flags & 0x80) !== 0,
      size: this.blockSize - h.headerLength,
    };
    if (this.collectBlocks) info.data = head.subarray(h.headerLength);
    this.handlers.onBlock?.(info);
    this.parts = [];
    this.mode = 'pass';
  }

  private finishPayload(): void {
    const mode = this.mode;
    this.mode = 'header';
    if (mode === 'block-head') {
      if (this.collectBlocks) {
        const data = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
        this.handlers.onClusterData?.(data);
        this.parts = [data];
      }
      this.emitBlock();
      this.mode = 'header';
    } else if (mode === 'collect' && this.collectId !== -1) {
      const payload = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
      this.parts = [];
      this.deliverCollected(this.collectId, payload);
    }
    this.afterElement();
  }

  private deliverCollected(id: number, payload: Buffer): void {
    if (id === ID.Timecode) {
      this.handlers.onClusterData?.(payload);
      this.handlers.onClusterTimecode?.(readUint(payload));
      return;
    }
    const whole = Buffer.concat([this.collectHeader, payload]);
    if (id === ID.EBML) this.handlers.onEbmlHeader?.(whole);
    else this.handlers.onTopElement?.(id, whole);
  }

  private afterElement(): void {
    if (this.mode === 'header') this.closeEnded();
  }

  /** Closes known-size containers that end at the current offset. */
  private closeEnded(): void {
    if (this.level === 3 && this.offset >= this.groupEnd!) this.level = 2;
    if (this.level === 2 && this.clusterEnd !== undefined && this.offset >= this.clusterEnd) this.closeCluster();
    if (this.level === 1 && this.segmentEnd !== undefined && this.offset >= this.segmentEnd) this.level = 0;
  }

  private closeCluster(): void {
    this.level = 1;
    this.clusterEnd = undefined;
    this.groupEnd = undefined;
    this.handlers.onClusterEnd?.();
  }
}
