// One pass at a time per native model: the binding throws E_STATE when a call arrives
// while another runs, so VitModel and SwinModel chain every call on one of these, and
// callers may fire calls without awaiting each other.

export class PassQueue {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `job` after every earlier job has settled, whether it succeeded or failed. */
  run<T>(job: () => Promise<T>): Promise<T> {
    const done = this.tail.then(job, job);
    this.tail = done.catch(() => undefined);
    return done;
  }

  /** Resolves once every job queued so far has settled. */
  async idle(): Promise<void> {
    await this.tail;
  }
}
