/** Public surface of the telemetry room, for the composition root (agent/main.ts) and commands. */
export { type BoardLike, boardChannelSource } from "./board-source.js";
export {
  buildStatusPresence,
  type DeviceStatus,
  decodeReadings,
  decodeStatus,
  encodeReadings,
  encodeStatus,
  itemIdFor,
  NS_TELEMETRY,
} from "./codec.js";
export { type TelemetryConfig, telemetryConfigSchema } from "./config.js";
export {
  PayloadError,
  PubsubError,
  ReadingError,
  SamplerError,
  SequenceError,
  SpoolError,
  TelemetryError,
} from "./errors.js";
export { FileSpoolStore, type FsyncPolicy } from "./file-spool.js";
export { type PublisherStats, type SquattedNode, TelemetryPublisher } from "./publisher.js";
export type { Reading, ReadingQuality, ReadingValue } from "./reading.js";
export type { ChannelEdge, ChannelInfo, ChannelSample, ChannelSource } from "./sampler.js";
export type { SessionPort } from "./session-port.js";
export {
  type TelemetryServiceOptions,
  type TelemetryStatus,
  TelemetryService,
  telemetryNodes,
  telemetryReaders,
} from "./service.js";
export { MemorySpoolStore, type SpoolStats, type SpoolStore } from "./spool.js";
