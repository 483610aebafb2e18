/**
 * A scratch file for the report's columns once they no longer fit its memory budget: blocks are
 * appended and read back by offset. The file is unlinked as soon as it is opened, so it holds disk
 * space only while its descriptor is open and leaves nothing behind, whatever ends the process.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmdirSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where a block lies in a {@link SpillFile}. */
export interface SpilledBlock {
  offset: number;
  bytes: number;
  /** Rows (results or values) in the block. */
  count: number;
}

export class SpillFile {
  private fd: number | null;
  private end = 0;

  constructor(dir: string = tmpdir()) {
    const scratch = mkdtempSync(join(dir, 'pipeline-report-'));
    const path = join(scratch, 'columns.bin');
    this.fd = openSync(path, 'w+', 0o600);
    unlinkSync(path);
    rmdirSync(scratch);
  }

  append(data: Uint8Array, count: number): SpilledBlock {
    const fd = this.open();
    let done = 0;
    while (done < data.byteLength) done += writeSync(fd, data, done, data.byteLength - done, this.end + done);
    const block = { offset: this.end, bytes: data.byteLength, count };
    this.end += data.byteLength;
    return block;
  }

  /**
   * The bytes of `block`, read into the start of `into` when it is large enough (a buffer reused
   * block after block: reading makes no garbage), else into a fresh buffer. Either way the bytes
   * start at offset 0 of their ArrayBuffer, so typed views of them are aligned.
   */
  read(block: SpilledBlock, into?: Uint8Array): Uint8Array {
    const fd = this.open();
    const out =
      into !== undefined && into.byteOffset === 0 && into.byteLength >= block.bytes
        ? into.subarray(0, block.bytes)
        : new Uint8Array(block.bytes);
    let done = 0;
    while (done < block.bytes) {
      const n = readSync(fd, out, done, block.bytes - done, block.offset + done);
      if (n === 0) throw new Error(`report scratch file ended at ${block.offset + done}, expected ${block.offset + block.bytes}`);
      done += n;
    }
    return out;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private open(): number {
    if (this.fd === null) throw new Error('report scratch file already closed');
    return this.fd;
  }
}
