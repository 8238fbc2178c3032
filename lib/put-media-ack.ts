/**
 * A PutMedia acknowledgement as it travels on the wire: one JSON object a line of the response
 * body (producer-protocol.md §4). The server's ingest sends these; the PutMedia clients read them.
 */
export interface PutMediaAck {
  EventType: 'BUFFERING' | 'RECEIVED' | 'PERSISTED' | 'ERROR' | 'IDLE';
  FragmentTimecode?: number;
  FragmentNumber?: string;
  /** ERROR acks: the numeric code (lib/service/ingest/ack-errors.ts). */
  ErrorId?: number;
  /** ERROR acks: the code's name. */
  ErrorCode?: string;
}
