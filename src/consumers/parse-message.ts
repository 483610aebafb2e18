import type { ZodType } from 'zod';
import { ValidationError } from '../errors';

/** Parses a JSON message body against a schema; a failure names what to fix. */
export function parseMessage<T>(content: Buffer, schema: ZodType<T>): T {
  let raw: unknown;
  try {
    raw = JSON.parse(content.toString('utf8'));
  } catch (err) {
    const preview = content.toString('utf8', 0, Math.min(content.length, 80));
    throw new ValidationError(`body is not valid JSON (${(err as Error).message}): ${JSON.stringify(preview)}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
    throw new ValidationError(`schema validation failed: ${issues.join('; ')}`);
  }
  return parsed.data;
}
