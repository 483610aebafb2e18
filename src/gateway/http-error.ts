import type { z } from 'zod';
import { PipelineError } from '../errors';

/** An error the gateway answers as `{ "error": code, "message": what to do }` with an HTTP status. */
export class GatewayHttpError extends PipelineError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(code, message, false);
  }
}

/** The issues of a failed zod parse, each with the path of the bad field. */
export function zodIssues(error: z.ZodError, root = ''): { path: string; message: string }[] {
  return error.issues.map((issue) => {
    const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
    return { path: `${root}${path}`.replace(/^\./, '') || '(body)', message: issue.message };
  });
}

/** Parses `data` with `schema`, or throws a 400 naming each bad field. */
export function parseOr400<S extends z.ZodType>(schema: S, data: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(data);
  if (parsed.success) return parsed.data;
  const issues = zodIssues(parsed.error);
  throw new GatewayHttpError(400, 'bad_request', `invalid ${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { issues });
}
