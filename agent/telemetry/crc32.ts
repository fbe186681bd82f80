/**
 * CRC-32 (IEEE 802.3, the zlib/PNG polynomial). Node's zlib.crc32 exists from 20.15/22.2 on; older
 * Node 20 releases get the table-driven version below, which gives the same results.
 */
import * as zlib from "node:zlib";

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32Table(data: Uint8Array, initial = 0): number {
  let c = (initial ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

export const crc32: (data: Uint8Array) => number = native ? (d) => native(d) >>> 0 : (d) => crc32Table(d);
