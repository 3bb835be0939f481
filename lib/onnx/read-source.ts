// The bytes of an ONNX model given as a path or a buffer, for every importer (ViT and Swin):
// E_IO naming the file when it cannot be read, E_CONFIG naming the calling function when the
// source is neither.

import * as fs from 'fs';
import * as path from 'path';
import { SpdfqError } from '../errors';

export async function readOnnxSource(source: string | Uint8Array, fn: string): Promise<{ bytes: Uint8Array; filePath: string | null }> {
  if (typeof source === 'string') {
    const filePath = path.resolve(source);
    try {
      return { bytes: await fs.promises.readFile(filePath), filePath };
    } catch (err) {
      throw new SpdfqError('E_IO', `cannot read ONNX model '${source}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
  }
  if (source instanceof Uint8Array) return { bytes: source, filePath: null };
  throw new SpdfqError('E_CONFIG', `${fn}: expected a file path or a Uint8Array, received ${typeof source}`);
}
