// Checks on where a command writes, made before any work: the path is a real, writable
// place (not empty, not under /proc, /sys or /dev, whose files no output belongs in and
// where creating folders can hang), and no input would be overwritten — compared by real
// path, so links and `./` spellings do not slip through.

import * as fs from 'fs';
import * as path from 'path';
import { SpdfqError } from '../errors';

export interface NamedPath {
  /** The flag or option that named it, for messages (e.g. '--model'). */
  flag: string;
  path: string;
}

const SPECIAL = ['/proc', '/sys', '/dev'];

function realOrResolved(p: string): string {
  // The real path of the deepest part that exists, joined with the rest.
  let existing = path.resolve(p);
  const rest: string[] = [];
  while (!fs.existsSync(existing)) {
    const parent = path.dirname(existing);
    if (parent === existing) break;
    rest.unshift(path.basename(existing));
    existing = parent;
  }
  let real = existing;
  try {
    real = fs.realpathSync(existing);
  } catch {
    // unreadable: keep the resolved path
  }
  return path.join(real, ...rest);
}

function nearestExisting(p: string): string {
  let dir = path.resolve(p);
  while (!fs.existsSync(dir)) dir = path.dirname(dir);
  return dir;
}

/**
 * Validates an output `target` (a file, or a folder when `isFolder`) given by `flag`, and
 * that none of `inputs` is the target, lies inside a target folder, or is one of
 * `writes` (the files the command will write inside a target folder).
 */
export function checkOutput(flag: string, target: unknown, inputs: NamedPath[], options: { isFolder?: boolean; writes?: string[] } = {}): string {
  if (typeof target !== 'string' || target.trim() === '') {
    throw new SpdfqError('E_CONFIG', `${flag}: expected a path to write to, received ${JSON.stringify(target)}`);
  }
  const resolved = path.resolve(target);
  const real = realOrResolved(resolved);
  if (SPECIAL.some((s) => real === s || real.startsWith(`${s}/`))) {
    throw new SpdfqError('E_CONFIG', `${flag}: ${target} is on a system filesystem (${real.split('/').slice(0, 2).join('/')}); expected a folder of your own`);
  }
  if (fs.existsSync(resolved)) {
    const st = fs.statSync(resolved);
    if (options.isFolder && !st.isDirectory()) throw new SpdfqError('E_CONFIG', `${flag}: ${target} exists and is not a folder`);
    if (!options.isFolder && st.isDirectory()) throw new SpdfqError('E_CONFIG', `${flag}: ${target} is a folder; expected a file name`);
  }
  const parent = nearestExisting(options.isFolder ? resolved : path.dirname(resolved));
  try {
    fs.accessSync(parent, fs.constants.W_OK);
  } catch {
    throw new SpdfqError('E_CONFIG', `${flag}: cannot write under ${parent} (permission denied or read-only)`);
  }
  const writes = options.isFolder ? (options.writes ?? []).map((w) => realOrResolved(path.join(resolved, w))) : [real];
  for (const input of inputs) {
    if (!input.path) continue;
    const ip = realOrResolved(input.path);
    // An input is overwritten when it is a written file, or lies inside a written folder.
    const overwritten = writes.some((w) => ip === w || ip.startsWith(`${w}${path.sep}`)) || (!options.isFolder && ip === real);
    if (overwritten) throw new SpdfqError('E_CONFIG', `${flag}: ${target} would overwrite the input ${input.flag} ${input.path}; choose another output`);
  }
  return resolved;
}
