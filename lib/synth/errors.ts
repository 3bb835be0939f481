// Synthesis failures that still hand back what was reached: a cancelled run (E_CANCELLED)
// and a NaN/Inf stop (E_NUMERIC) carry the images of the last good step in `partial`.

import { SpdfqError, SpdfqErrorCode } from '../errors';
import type { SynthesisResult } from './result';

export class SynthesisStoppedError extends SpdfqError {
  /** Everything reached before the stop: the last good images, targets, losses so far. */
  readonly partial: SynthesisResult;
  /** Global step (0-based) at which the loop stopped. */
  readonly step: number;
  /** E_NUMERIC: the loss part that was not finite ('apa', 'cls', 'tv', 'pse', 'gradient', 'alpha'). */
  readonly part: string;
  constructor(code: 'E_CANCELLED' | 'E_NUMERIC', message: string, partial: SynthesisResult, step: number, part: string) {
    super(code, message);
    this.name = 'SynthesisStoppedError';
    this.partial = partial;
    this.step = step;
    this.part = part;
  }
}

/** Re-throws a native failure as SpdfqError with the caller's stack (as sharp does). */
export function rethrowNative(err: unknown, callerStack: Error): never {
  if (err instanceof SpdfqError) throw err;
  const e = err as Error & { code?: string };
  const code = (typeof e.code === 'string' && e.code.startsWith('E_') ? e.code : 'E_NATIVE') as SpdfqErrorCode;
  const out = new SpdfqError(code, e.message, { cause: err });
  out.stack = `SpdfqError: ${e.message}\n${(callerStack.stack ?? '').split('\n').slice(1).join('\n')}`;
  throw out;
}
