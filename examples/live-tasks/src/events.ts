/** The live-streaming app's events: the one declaration that types publishers and handlers. */
export type LiveEvents = {
  /** A streamer earned money (gifts, tips), in yuan. */
  'anchor.income': { anchorId: string; amount: number; at: string };
  /** A streamer was live for some minutes. */
  'live.duration': { anchorId: string; minutes: number; at: string };
};

/**
 * Topic the live app publishes on: `live`, or `$LIVE_TOPIC` (tests use their own topic to stay apart
 * from other runs on a shared Redis or Kafka).
 */
export const LIVE_TOPIC = process.env.LIVE_TOPIC || 'live';
