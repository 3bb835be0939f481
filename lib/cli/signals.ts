// Stopping a long command: SIGINT (Ctrl-C) and SIGTERM (what `timeout`, Slurm and
// Kubernetes send) both abort the work through an AbortSignal, so completed stages are
// kept and the outputs say the run was cancelled; a second signal exits at once.

export async function withStopSignals<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const handlers: [NodeJS.Signals, () => void][] = (['SIGINT', 'SIGTERM'] as NodeJS.Signals[]).map((sig) => [
    sig,
    () => {
      if (ac.signal.aborted) {
        process.stderr.write(`\n${sig} again: exiting now\n`);
        process.exit(sig === 'SIGINT' ? 130 : 143);
      }
      process.stderr.write(`\n${sig}: stopping after the current step, keeping what is done (again to exit at once)…\n`);
      ac.abort();
    },
  ]);
  for (const [sig, h] of handlers) process.on(sig, h);
  try {
    return await work(ac.signal);
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
  }
}

/** The exit status of a command stopped by a signal (128 + the signal's number). */
export const CANCELLED_EXIT_CODE = 130;
