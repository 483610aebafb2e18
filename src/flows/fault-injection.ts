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
 * them. Per symbol: `state:<symbol>` fails that symbol's state commits, `crash:<symbol>:5m:<ts>` kills
 * the tactical worker on that bar. The file is re-read at most every 200 ms. Without the setting this never fails anything.
 */
export class FaultInjector {
  private checkedAt = 0;
  private mtimeMs = -1;
  private stages = new Set<string>();

  constructor(private readonly file: string | null) {}

  /** Throws {@link InjectedFaultError} when `stage` is listed. */
  check(stage: string): void {
    if (this.listed(stage)) throw new InjectedFaultError(stage);
  }

  /**
   * Kills the process at once (exit code 70, no cleanup) when `stage` is listed, as a bug that
   * crashes the worker on one message would: `crash:<symbol>:5m:<ts>` in the file.
   */
  crashIfListed(stage: string): void {
    if (this.listed(stage)) {
      process.stderr.write(`fault injected: ${stage} kills the worker (PIPELINE_FAULT_FILE)\n`);
      process.exit(70);
    }
  }

  private listed(stage: string): boolean {
    if (this.file === null) return false;
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
    return this.stages.has(stage);
  }
}

/** An injector that never fails. */
export const NO_FAULTS = new FaultInjector(null);
