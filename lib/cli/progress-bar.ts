// A one-line progress bar on a stream (stderr for the CLI): redrawn in place on a
// terminal, or a plain line every few seconds when output goes to a file or a pipe.

export interface ProgressBarOptions {
  stream?: NodeJS.WriteStream;
  width?: number;
  /** Seconds between lines when the stream is not a terminal: 5. */
  plainEvery?: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}

export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : v.toPrecision(4);
}

export class ProgressBar {
  private readonly stream: NodeJS.WriteStream;
  private readonly width: number;
  private readonly plainEvery: number;
  private lastPlain = 0;
  private drawn = false;

  constructor(opts: ProgressBarOptions = {}) {
    this.stream = opts.stream ?? process.stderr;
    this.width = opts.width ?? 24;
    this.plainEvery = opts.plainEvery ?? 5;
  }

  /** Draws `done`/`total` with a label and extra fields ("apa 1.2e-4  sl 2.31 …"). */
  update(done: number, total: number, label: string, fields: string): void {
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const filled = Math.round(frac * this.width);
    const bar = `[${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? (frac < 1 ? '>' : '=') : ''}${' '.repeat(this.width - filled)}]`;
    const line = `${label} ${bar} ${Number.isInteger(done) ? done : done.toFixed(2)}/${total} ${fields}`;
    if (this.stream.isTTY) {
      const cols = this.stream.columns ?? 120;
      this.stream.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, line.length))}\x1b[K`);
      this.drawn = true;
    } else {
      const now = Date.now() / 1000;
      if (now - this.lastPlain >= this.plainEvery || done >= total) {
        this.stream.write(`${line}\n`);
        this.lastPlain = now;
      }
    }
  }

  /** Ends the line (so later messages start on their own). */
  done(): void {
    if (this.drawn && this.stream.isTTY) this.stream.write('\n');
    this.drawn = false;
  }
}
