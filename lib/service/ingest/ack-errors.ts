/**
 * PutMedia ERROR acknowledgement codes (producer-protocol.md §4.4): the numeric ErrorId the
 * producer acts on and the ErrorCode name sent beside it.
 */
export const ACK_ERRORS = {
  STREAM_READ_ERROR: 4000,
  MAX_FRAGMENT_SIZE_REACHED: 4001,
  MAX_FRAGMENT_DURATION_REACHED: 4002,
  MAX_CONNECTION_DURATION_REACHED: 4003,
  FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS: 4004,
  MORE_THAN_ONE_TRACK_FOUND: 4005,
  INVALID_MKV_DATA: 4006,
  INVALID_PRODUCER_TIMESTAMP: 4007,
  STREAM_NOT_ACTIVE: 4008,
  FRAGMENT_METADATA_LIMIT_REACHED: 4009,
  TRACK_NUMBER_MISMATCH: 4010,
  FRAMES_MISSING_FOR_TRACK: 4011,
  MORE_THAN_ALLOWED_TRACKS_FOUND: 4012,
  INTERNAL_ERROR: 5000,
  ARCHIVAL_ERROR: 5001,
} as const;

export type AckErrorCode = keyof typeof ACK_ERRORS;

/** A violation of the ingest rules, ending the PutMedia session with an ERROR ack. */
export class IngestError extends Error {
  override name = 'IngestError';
  constructor(
    readonly code: AckErrorCode,
    message: string,
  ) {
    super(message);
  }
  get errorId(): number {
    return ACK_ERRORS[this.code];
  }
}
