/**
 * Runs tasks one after another per key, and tasks of different keys concurrently. Used to keep
 * per-symbol order while other symbols proceed (a symbol waiting for its context blocks only itself).
 */
export class KeyedSerialQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs `task` after every earlier task of `key` has settled. */
  run<T>(key: string, task: () => Promise<T> | T): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const next = previous.then(task, task);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }

  /** True when no task of `key` is queued or running: work for it may run now, in order. */
  idle(key: string): boolean {
    return !this.tails.has(key);
  }
}
