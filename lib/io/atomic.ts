// Writing outputs so that a crash, a full disk or a kill never leaves a half-written file
// under the final name: each file is written to a temporary name beside it, flushed, then
// renamed (rename is atomic within a folder). Errors name the file and keep the old one.

import * as fs from 'fs';
import * as path from 'path';
import { SpdfqError } from '../errors';

/** The file-system calls writeFileAtomic makes (tests pass a failing one). */
export type AtomicFs = Pick<typeof fs, 'openSync' | 'writeSync' | 'fsyncSync' | 'closeSync' | 'renameSync' | 'rmSync'>;

export function writeFileAtomic(file: string, data: string | Uint8Array, io: AtomicFs = fs): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  let fd: number | null = null;
  try {
    fd = io.openSync(tmp, 'w');
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    let off = 0;
    while (off < buf.length) off += io.writeSync(fd, buf, off, buf.length - off);
    io.fsyncSync(fd);
    io.closeSync(fd);
    fd = null;
    io.renameSync(tmp, file);
  } catch (err) {
    if (fd !== null) {
      try {
        io.closeSync(fd);
      } catch {
        // already failing; the write error below is the one to report
      }
    }
    io.rmSync(tmp, { force: true });
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOSPC' ? 'the disk is full' : e.code === 'EACCES' || e.code === 'EPERM' ? 'permission denied' : e.message;
    throw new SpdfqError('E_IO', `cannot write ${file}: ${why} (nothing was written under that name)`, { cause: err });
  }
}

/** Creates a folder (and its parents), naming it in the error. */
export function makeDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new SpdfqError('E_IO', `cannot create the folder ${dir}: ${(err as Error).message}`, { cause: err });
  }
}
