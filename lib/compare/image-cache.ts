// A cache of synthesized calibration images for `compare --cache`: synthesis is most of a
// comparison's time, and a sweep over quantization settings (reconstruction length, bit
// widths) or a run resumed after an interruption needs the same images again. Entries are
// keyed by everything that determines them: the model's weights, the method, the seed and
// the resolved synthesis options (the loop is deterministic for those at a thread count).

import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { SpdfqError } from '../errors';

export interface CachedImages {
  images: Float32Array;
  targets: Int32Array;
}

/** The cache key: a SHA-256 over the key's canonical JSON (object keys sorted). */
export function cacheKey(key: unknown): string {
  const canonical = JSON.stringify(key, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([p], [q]) => p.localeCompare(q))) : x,
  );
  return crypto.createHash('sha256').update(canonical).digest('hex').slice(0, 32);
}

/** SHA-256 of an array's bytes (the model's weights). */
export function bytesDigest(a: ArrayBufferView): string {
  return crypto.createHash('sha256').update(Buffer.from(a.buffer, a.byteOffset, a.byteLength)).digest('hex').slice(0, 32);
}

export class ImageCache {
  constructor(private readonly dir: string) {}

  private file(key: string): string {
    return path.join(this.dir, `${key}.bin`);
  }

  /** The entry, or null (absent, or written for another image size: then recomputed). */
  get(key: string, count: number, imageLength: number): CachedImages | null {
    const f = this.file(key);
    if (!fs.existsSync(f)) return null;
    const bytes = fs.readFileSync(f);
    if (bytes.length !== count * (imageLength + 1) * 4) return null;
    const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
    return { images: new Float32Array(buf, 0, count * imageLength), targets: new Int32Array(buf, count * imageLength * 4, count) };
  }

  /** Stores an entry atomically (temporary name, then rename). */
  put(key: string, entry: CachedImages): void {
    try {
      fs.mkdirSync(this.dir, { recursive: true });
      const tmp = `${this.file(key)}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, Buffer.concat([Buffer.from(entry.images.buffer, entry.images.byteOffset, entry.images.byteLength), Buffer.from(entry.targets.buffer, entry.targets.byteOffset, entry.targets.byteLength)]));
      fs.renameSync(tmp, this.file(key));
    } catch (err) {
      throw new SpdfqError('E_IO', `cannot write the image cache in ${this.dir}: ${(err as Error).message}`);
    }
  }
}
