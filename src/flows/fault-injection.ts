import { readFileSync, statSync } from 'node:fs';
import { PipelineError } from '../errors';

/** A failure injected on purpose (resilience testing). */
export class InjectedFaultError extends PipelineError {
  constructor(stage: string) {
    super('FAULT_INJECTED', `fault injected into ${stage} (PIPELINE_FAULT_FILE)`, true);
  }
}

/**
 * Resilience testing: when `PIPELINE_FAULT_FILE` names a file, the stages listed in it (comma or
 * line separated: `agents`, `pattern_store`) fail on every call until the file no longer lists
 * them. The file is re-read at most every 200 ms. Without the setting this never fails anything.
 */
export class FaultInjector {
  private checkedAt = 0;
  private mtimeMs = -1;
  private stages = new Set<string>();

  constructor(private readonly file: string | null) {}

  /** Throws {@link InjectedFaultError} when `stage` is listed. */
  check(stage: string): void {
    if (this.file === null) return;
    const now = Date.now();
    if (now - this.checkedAt > 200) {
      this.checkedAt = now;
      try {
        const mtime = statSync(this.file).mtimeMs;
        if (mtime !== this.mtimeMs) {
          this.mtimeMs = mtime;
          this.stages = new Set(readFileSync(this.file, 'utf8').split(/[\s,]+/).filter((x) => x !== ''));
        }
      } catch {
        this.mtimeMs = -1;
        this.stages = new Set();
      }
    }
    if (this.stages.has(stage)) throw new InjectedFaultError(stage);
  }
}

/** An injector that never fails. */
export const NO_FAULTS = new FaultInjector(null);
