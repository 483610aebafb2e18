import type { z } from 'zod';
import { PipelineError } from '../errors';

/** Most issues a 400 lists; past it the answer says `"truncated": true`. */
export const MAX_ISSUES = 20;
/** Longest text of one issue's path or message in an answer (a field name can be the client's). */
const MAX_ISSUE_CHARS = 200;

/** An error the gateway answers as `{ "error": code, "message": what to do }` with an HTTP status. */
export class GatewayHttpError extends PipelineError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    /** Response headers to send with it (`retry-after`). */
    readonly headers: Record<string, string> = {},
  ) {
    super(code, message, false);
  }
}

/** A process call whose bars cannot be processed as given (order, symbol, timeframe): a 400. */
export class ProcessInputError extends PipelineError {
  constructor(message: string) {
    super('PROCESS_INPUT_INVALID', message, false);
  }
}

/** `text` cut to `max` characters, with an ellipsis when cut. */
export function clip(text: string, max = MAX_ISSUE_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The issues of a failed zod parse, each with the path of the bad field (path and message clipped). */
export function zodIssues(error: z.ZodError, root = ''): { path: string; message: string }[] {
  return error.issues.map((issue) => {
    const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
    return { path: clip(`${root}${path}`.replace(/^\./, '') || '(body)'), message: clip(issue.message) };
  });
}

/**
 * The first {@link MAX_ISSUES} of `list`, and `truncated: true` when there were more: what a 400
 * lists, so that its size does not grow with the request's (10,000 bad bars, one answer of a few KiB).
 */
export function capIssues<T>(list: T[]): { items: T[]; truncated?: true } {
  return list.length > MAX_ISSUES ? { items: list.slice(0, MAX_ISSUES), truncated: true } : { items: list };
}

/** Parses `data` with `schema`, or throws a 400 naming each bad field (at most {@link MAX_ISSUES}). */
export function parseOr400<S extends z.ZodType>(schema: S, data: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(data);
  if (parsed.success) return parsed.data;
  const { items, truncated } = capIssues(zodIssues(parsed.error));
  const more = truncated === true ? `; and ${parsed.error.issues.length - items.length} more` : '';
  throw new GatewayHttpError(400, 'bad_request', `invalid ${what}: ${items.map((i) => `${i.path}: ${i.message}`).join('; ')}${more}`, {
    issues: items,
    ...(truncated === true ? { truncated } : {}),
  });
}
