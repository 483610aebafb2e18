/**
 * The files inside a zip archive, read with node's zlib alone (stored or deflated entries, the two
 * methods zip tools and Binance's archives use). Enough for kline archives of a few MB: the archive
 * is read whole, each entry inflated on demand. Zip64, encryption and multi-disk archives are
 * refused with a message naming the archive.
 */
import { readFile } from 'node:fs/promises';
import { crc32, inflateRawSync } from 'node:zlib';
import { ValidationError } from '../errors';

/** One file in a zip archive. */
export interface ZipEntry {
  name: string;
  /** The entry's bytes, inflated and checked against the archive's CRC-32. */
  read(): Buffer;
}

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** The entries of the zip archive at `path` (directories left out), in archive order. */
export async function readZipEntries(path: string): Promise<ZipEntry[]> {
  const zip = await readFile(path);
  const bad = (why: string): ValidationError => new ValidationError(`${path}: not a zip archive this reader takes (${why})`);
  // The end-of-central-directory record: 22 bytes plus a comment of at most 65,535.
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 65_535); i--) {
    if (zip.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad('no end-of-central-directory record');
  const count = zip.readUInt16LE(eocd + 10);
  const cdOffset = zip.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdOffset === 0xffffffff) throw bad('zip64');
  const entries: ZipEntry[] = [];
  let at = cdOffset;
  for (let n = 0; n < count; n++) {
    if (at + 46 > zip.length || zip.readUInt32LE(at) !== CENTRAL) throw bad('central directory damaged');
    const flags = zip.readUInt16LE(at + 8);
    const method = zip.readUInt16LE(at + 10);
    const crc = zip.readUInt32LE(at + 16);
    const compressedSize = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localOffset = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extraLength + commentLength;
    if (name.endsWith('/')) continue;
    if ((flags & 1) !== 0) throw bad(`${name} is encrypted`);
    if (method !== 0 && method !== 8) throw bad(`${name} uses compression method ${method}`);
    entries.push({
      name,
      read(): Buffer {
        if (zip.readUInt32LE(localOffset) !== LOCAL) throw bad(`local header of ${name} damaged`);
        const start = localOffset + 30 + zip.readUInt16LE(localOffset + 26) + zip.readUInt16LE(localOffset + 28);
        const raw = zip.subarray(start, start + compressedSize);
        let data: Buffer;
        try {
          data = method === 0 ? Buffer.from(raw) : inflateRawSync(raw);
        } catch (err) {
          throw bad(`${name} does not inflate: ${(err as Error).message}`);
        }
        if (data.length !== size || crc32(data) !== crc) throw bad(`${name} fails its CRC-32 check`);
        return data;
      },
    });
  }
  return entries;
}
