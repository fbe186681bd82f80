/**
 * The framed serial protocol (docs/serial-protocol.md): frame layout, message types and payload
 * codecs, shared by the agent's driver and the firmware simulator so both sides agree by
 * construction. Encoding functions validate their input and throw DriverError
 * driver_bad_argument / serial_frame_too_large; decoders throw serial_bad_response.
 */
import { DriverError, type Frame } from "../types.js";
import { crc16ccitt } from "./crc.js";

export const SYNC1 = 0xa5;
export const SYNC2 = 0x5a;
export const PROTOCOL_VERSION = 1;
/** SYNC1 SYNC2 VERSION TYPE SEQ LEN_HI LEN_LO */
export const HEADER_BYTES = 7;
export const CRC_BYTES = 2;
export const FRAME_OVERHEAD = HEADER_BYTES + CRC_BYTES;
/** Hard protocol limit of the 16-bit length field; links use a smaller configured maximum. */
export const MAX_PAYLOAD_LIMIT = 0xffff;

export const MSG = {
  PING: 0x01,
  VERSION: 0x02,
  LIST: 0x03,
  READ: 0x10,
  SET: 0x20,
  GET: 0x21,
  /** A response to any request, carrying an error code and message instead of the answer. */
  ERROR: 0xff,
} as const;
export const RESPONSE_BIT = 0x80;

export const REMOTE_ERROR = {
  UNKNOWN_TYPE: 1,
  UNKNOWN_SENSOR: 2,
  SENSOR_FAULT: 3,
  BAD_PAYLOAD: 4,
  UNKNOWN_ACTUATOR: 5,
  BUSY: 6,
} as const;

export const MAX_NAME_BYTES = 32;

export function isResponse(type: number): boolean {
  return (type & RESPONSE_BIT) !== 0;
}

export function encodeFrame(frame: Frame, maxPayload = MAX_PAYLOAD_LIMIT): Buffer {
  const { type, seq, payload } = frame;
  if (!Number.isInteger(type) || type < 0 || type > 0xff || !Number.isInteger(seq) || seq < 0 || seq > 0xff)
    throw new DriverError("driver_bad_argument", `frame type ${type} / seq ${seq} must be bytes`, { device: "serial" });
  if (payload.length > Math.min(maxPayload, MAX_PAYLOAD_LIMIT))
    throw new DriverError("serial_frame_too_large", `payload of ${payload.length} bytes exceeds ${maxPayload}`, {
      device: "serial",
      bytes: payload.length,
    });
  const out = Buffer.allocUnsafe(FRAME_OVERHEAD + payload.length);
  out[0] = SYNC1;
  out[1] = SYNC2;
  out[2] = PROTOCOL_VERSION;
  out[3] = type;
  out[4] = seq;
  out.writeUInt16BE(payload.length, 5);
  payload.copy(out, HEADER_BYTES);
  out.writeUInt16BE(crc16ccitt(out, 2, HEADER_BYTES + payload.length), HEADER_BYTES + payload.length);
  return out;
}

// ---- payloads -------------------------------------------------------------------------------

function badPayload(what: string): DriverError {
  return new DriverError("serial_bad_response", `malformed ${what} payload`, { device: "serial" });
}

export function encodeName(name: string): Buffer {
  const b = Buffer.from(name, "utf8");
  if (b.length === 0 || b.length > MAX_NAME_BYTES)
    throw new DriverError(
      "driver_bad_argument",
      `name ${JSON.stringify(name)} must be 1..${MAX_NAME_BYTES} UTF-8 bytes`,
      { device: "serial" },
    );
  return b;
}

/** Values travel as signed 32-bit milli-units (fixed point), what small MCUs compute natively. */
export function toMilli(value: number): number {
  const m = Math.round(value * 1000);
  if (!Number.isFinite(m) || m < -0x80000000 || m > 0x7fffffff)
    throw new DriverError("driver_bad_argument", `value ${value} does not fit the protocol's ±2,147,483.647 range`, {
      device: "serial",
    });
  return m;
}

export interface SensorValue {
  value: number;
  /** How old the MCU's sample is, in ms (0 = sampled for this request). */
  ageMs: number;
}

export function encodeSensorValue(v: SensorValue): Buffer {
  const b = Buffer.alloc(8);
  b.writeInt32BE(toMilli(v.value), 0);
  b.writeUInt32BE(Math.max(0, Math.min(0xffffffff, Math.round(v.ageMs))), 4);
  return b;
}

export function decodeSensorValue(p: Buffer): SensorValue {
  if (p.length !== 8) throw badPayload("READ response");
  return { value: p.readInt32BE(0) / 1000, ageMs: p.readUInt32BE(4) };
}

export function encodeSet(name: string, value: number): Buffer {
  const n = encodeName(name);
  const b = Buffer.alloc(1 + n.length + 4);
  b[0] = n.length;
  n.copy(b, 1);
  b.writeInt32BE(toMilli(value), 1 + n.length);
  return b;
}

export function decodeSet(p: Buffer): { name: string; value: number } {
  const len = p[0];
  if (len === undefined || len === 0 || len > MAX_NAME_BYTES || p.length !== 1 + len + 4) throw badPayload("SET");
  return { name: p.subarray(1, 1 + len).toString("utf8"), value: p.readInt32BE(1 + len) / 1000 };
}

export function encodeMilli(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(toMilli(value), 0);
  return b;
}

export function decodeMilli(p: Buffer): number {
  if (p.length !== 4) throw badPayload("SET response");
  return p.readInt32BE(0) / 1000;
}

export interface DeviceInventory {
  sensors: string[];
  actuators: string[];
}

export function encodeList(inv: DeviceInventory): Buffer {
  const parts: Buffer[] = [];
  for (const names of [inv.sensors, inv.actuators]) {
    if (names.length > 255)
      throw new DriverError("driver_bad_argument", "at most 255 names per list", { device: "serial" });
    parts.push(Buffer.from([names.length]));
    for (const n of names) {
      const b = encodeName(n);
      parts.push(Buffer.from([b.length]), b);
    }
  }
  return Buffer.concat(parts);
}

export function decodeList(p: Buffer): DeviceInventory {
  let at = 0;
  const readNames = (): string[] => {
    const count = p[at++];
    if (count === undefined) throw badPayload("LIST");
    const names: string[] = [];
    for (let i = 0; i < count; i++) {
      const len = p[at++];
      if (len === undefined || len === 0 || at + len > p.length) throw badPayload("LIST");
      names.push(p.subarray(at, at + len).toString("utf8"));
      at += len;
    }
    return names;
  };
  const sensors = readNames();
  const actuators = readNames();
  if (at !== p.length) throw badPayload("LIST");
  return { sensors, actuators };
}

export interface RemoteError {
  code: number;
  message: string;
}

export function encodeError(e: RemoteError): Buffer {
  return Buffer.concat([Buffer.from([e.code & 0xff]), Buffer.from(e.message.slice(0, 200), "utf8")]);
}

export function decodeError(p: Buffer): RemoteError {
  const code = p[0];
  if (code === undefined) throw badPayload("ERROR");
  return { code, message: p.subarray(1).toString("utf8") };
}
