import type { ChannelOptions } from '@grpc/grpc-js';

/** Largest message a Prism server or client accepts (gRPC's own default, stated once). */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * Server options: message size limits, and keepalive pings so a dead peer (a client behind a
 * NAT that dropped the flow) is noticed on long Subscribe streams. Clients may ping every 30 s.
 */
export const SERVER_OPTIONS: ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': 120_000,
  'grpc.keepalive_timeout_ms': 20_000,
  'grpc.http2.min_ping_interval_without_data_ms': 30_000,
  // Channelz counts and timestamps every call and stream for a channelz service nobody serves here.
  'grpc.enable_channelz': 0,
};

/**
 * Client options: no message limit of their own (the server's limit decides: a proxy started with
 * a larger --max-message-size sends and takes larger messages); keepalive only while calls are open.
 */
export const CLIENT_OPTIONS: ChannelOptions = {
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
  'grpc.keepalive_time_ms': 60_000,
  'grpc.keepalive_timeout_ms': 20_000,
  'grpc.keepalive_permit_without_calls': 0,
  'grpc.enable_channelz': 0,
};
