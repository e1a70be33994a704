/**
 * Reads the entries of a ZIP whose entries are STORED (no compression), as the
 * constructs' reproducible watchdog zip is: what Lambda does with the code package
 * before it runs `index.handler`.
 */
import * as zlib from 'node:zlib';

export interface UnzippedEntry {
  readonly name: string;
  readonly data: Buffer;
}

const LOCAL = 0x04034b50;
const CENTRAL = 0x02014b50;
const END = 0x06054b50;

function crc32(data: Buffer): number | undefined {
  const fn = (zlib as unknown as { crc32?: (b: Buffer) => number }).crc32;
  return typeof fn === 'function' ? fn(data) >>> 0 : undefined;
}

/** The archive's entries; throws on anything but stored entries with matching CRCs. */
export function readStoredZip(zip: Buffer): UnzippedEntry[] {
  const entries: UnzippedEntry[] = [];
  let at = 0;
  while (at + 4 <= zip.length) {
    const sig = zip.readUInt32LE(at);
    if (sig === CENTRAL || sig === END) break;
    if (sig !== LOCAL) throw new Error(`zip: unexpected signature 0x${sig.toString(16)} at offset ${at}`);
    const flags = zip.readUInt16LE(at + 6);
    const method = zip.readUInt16LE(at + 8);
    const crc = zip.readUInt32LE(at + 14);
    const size = zip.readUInt32LE(at + 18);
    const nameLength = zip.readUInt16LE(at + 26);
    const extraLength = zip.readUInt16LE(at + 28);
    const name = zip.toString('utf8', at + 30, at + 30 + nameLength);
    if (method !== 0) throw new Error(`zip: entry '${name}' is compressed (method ${method}); only stored entries are read`);
    if (flags & 0x08) throw new Error(`zip: entry '${name}' uses a data descriptor; not supported`);
    const start = at + 30 + nameLength + extraLength;
    const data = zip.subarray(start, start + size);
    const actual = crc32(data);
    if (actual !== undefined && actual !== crc) throw new Error(`zip: entry '${name}' fails its CRC check`);
    entries.push({ name, data });
    at = start + size;
  }
  return entries;
}
