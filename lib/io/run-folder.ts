// An output folder owned by one run: a marker file (.spdfq-run.json) records which job
// wrote it (command and a key over its inputs and options) and which stages it completed.
// A second run into the same folder is refused unless it asks to resume (reusing the
// stages whose keys still match) or to start over (--force, which removes only what the
// run itself writes). The folder is created at the first write, and removed again if the
// run fails before writing anything.

import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { SpdfqError } from '../errors';
import { makeDir, writeFileAtomic } from './atomic';

const MARKER = '.spdfq-run.json';

interface Marker {
  format: 'spdfq-native run folder 1';
  command: string;
  key: string;
  stages: Record<string, { key: string; files: string[] }>;
}

export interface RunFolderOptions {
  /** The command, for messages ('run', 'synth'). */
  command: string;
  /** Identity of the job (inputs and options); keyOf builds one. */
  key: string;
  /** What the run writes, relative to the folder (files or subfolders). */
  writes: string[];
  /** Entries that other parts of the same job keep in the folder (a synth merge beside its
   *  shards' `shards/`): neither another run's files nor removed by --force. */
  beside?: string[];
  force?: boolean;
  resume?: boolean;
  /** The flags' names in messages. */
  flags?: { out: string; force: string; resume: string };
}

/** SHA-256 (hex, 32 chars) of a JSON-able value, object keys sorted. */
export function keyOf(value: unknown): string {
  const canonical = JSON.stringify(value, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) && !ArrayBuffer.isView(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x,
  );
  return crypto.createHash('sha256').update(canonical).digest('hex').slice(0, 32);
}

/** SHA-256 of a file's bytes (the model a run reads). */
export function fileKey(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 32);
}

export class RunFolder {
  private marker: Marker;
  private created = false;
  private wrote = false;

  private constructor(readonly dir: string, private readonly opts: RunFolderOptions, previous: Marker | null) {
    this.marker = previous && opts.resume ? { ...previous, key: opts.key } : { format: 'spdfq-native run folder 1', command: opts.command, key: opts.key, stages: {} };
  }

  static open(dir: string, opts: RunFolderOptions): RunFolder {
    const flags = opts.flags ?? { out: '--out', force: '--force', resume: '--resume' };
    if (opts.force && opts.resume) throw new SpdfqError('E_CONFIG', `${flags.force} and ${flags.resume}: expected one of them, received both`);
    const entries = fs.existsSync(dir) ? fs.readdirSync(dir).filter((e) => !(opts.beside ?? []).includes(e)) : [];
    let previous: Marker | null = null;
    if (entries.includes(MARKER)) {
      try {
        previous = JSON.parse(fs.readFileSync(path.join(dir, MARKER), 'utf8')) as Marker;
      } catch {
        previous = null;
      }
    }
    if (entries.length > 0 && !opts.force) {
      if (!previous) {
        throw new SpdfqError('E_CONFIG', `${flags.out} ${dir} already holds files that no spdfq-native ${opts.command} wrote; choose an empty or new folder (${flags.force} would replace only what this run writes)`);
      }
      if (!opts.resume) {
        throw new SpdfqError('E_CONFIG', `${flags.out} ${dir} holds an earlier ${previous.command} (stages done: ${Object.keys(previous.stages).join(', ') || 'none'}); pass ${flags.resume} to continue it or ${flags.force} to start over`);
      }
      if (previous.command !== opts.command) {
        throw new SpdfqError('E_CONFIG', `${flags.resume}: ${dir} holds a ${previous.command}, not a ${opts.command}`);
      }
    }
    const folder = new RunFolder(dir, opts, previous);
    if (opts.force && entries.length > 0) {
      for (const w of [...opts.writes, MARKER]) fs.rmSync(path.join(dir, w), { recursive: true, force: true });
    }
    folder.created = !fs.existsSync(dir);
    return folder;
  }

  /** The path of a file of the run (its folder is created on the first write). */
  file(name: string): string {
    return path.join(this.dir, name);
  }

  private ensure(): void {
    if (this.wrote) return;
    makeDir(this.dir);
    this.wrote = true;
    this.saveMarker();
  }

  private saveMarker(): void {
    writeFileAtomic(path.join(this.dir, MARKER), `${JSON.stringify(this.marker, null, 1)}\n`);
  }

  /** Writes a file of the run atomically. */
  write(name: string, data: string | Uint8Array): string {
    this.ensure();
    const p = this.file(name);
    makeDir(path.dirname(p));
    writeFileAtomic(p, data);
    return p;
  }

  /** The folder for files written by other code (created now). */
  subfolder(name: string): string {
    this.ensure();
    const p = this.file(name);
    makeDir(p);
    return p;
  }

  /** A completed stage whose key equals `key` and whose files all exist (resume only). */
  completed(stage: string, key: string): boolean {
    const s = this.marker.stages[stage];
    return !!this.opts.resume && !!s && s.key === key && s.files.every((f) => fs.existsSync(this.file(f)));
  }

  markDone(stage: string, key: string, files: string[]): void {
    this.ensure();
    this.marker.stages[stage] = { key, files: files.map((f) => path.relative(this.dir, path.resolve(this.dir, f))) };
    this.saveMarker();
  }

  /** Forgets a stage (its inputs changed, so everything after it is redone). */
  invalidate(stage: string): void {
    if (!(stage in this.marker.stages)) return;
    delete this.marker.stages[stage];
    if (this.wrote) this.saveMarker();
  }

  /** After a failure: removes the folder if this run created it and wrote nothing. */
  discardIfEmpty(): void {
    if (this.created && !this.wrote && fs.existsSync(this.dir) && fs.readdirSync(this.dir).length === 0) fs.rmdirSync(this.dir);
  }
}
