// Finished cells of a comparison on disk (one JSON file per cell), so that a table run
// again — a Slurm array resubmitted after a time limit or a preemption, a pod restarted —
// computes only what is missing. A cell is reused only for the same protocol: a file made
// with other options is refused rather than silently mixed into the table.

import * as fs from 'fs';
import * as path from 'path';
import { SpdfqError } from '../errors';
import { makeDir, writeFileAtomic } from '../io/atomic';

interface StoredCell<T> {
  /** What the values depend on besides the cell: model, evaluation set, protocol. */
  fingerprint: string;
  value: T;
}

export class CellStore {
  constructor(readonly dir: string) {}

  private file(name: string): string {
    return path.join(this.dir, `${name}.json`);
  }

  /** The stored value of a cell, or undefined when it has not finished. */
  get<T>(name: string, fingerprint: string): T | undefined {
    const file = this.file(name);
    if (!fs.existsSync(file)) return undefined;
    let stored: StoredCell<T>;
    try {
      stored = JSON.parse(fs.readFileSync(file, 'utf8')) as StoredCell<T>;
    } catch (err) {
      throw new SpdfqError('E_IO', `compare: cannot read the finished cell ${file}: ${(err as Error).message}; remove it to compute the cell again`);
    }
    if (stored.fingerprint !== fingerprint) {
      throw new SpdfqError('E_CONFIG', `compare: ${file} was measured on another model, evaluation set or protocol (${stored.fingerprint} vs ${fingerprint}): use another --out, or remove ${this.dir} to start over`);
    }
    return stored.value;
  }

  put<T>(name: string, fingerprint: string, value: T): void {
    makeDir(this.dir);
    const stored: StoredCell<T> = { fingerprint, value };
    writeFileAtomic(this.file(name), `${JSON.stringify(stored)}\n`);
  }
}
