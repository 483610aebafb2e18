import { z } from 'zod';
import { BarBatchSchema } from './bar-batch.schema';
import { ResultBatchSchema } from './result-batch.schema';
import { Bar30mSchema, BarSchema } from './bar.schema';
import { DeadLetterHeadersSchema } from './dead-letter.schema';
import { ExperienceBatchSchema, ExperienceSchema } from './experience.schema';
import { FeedbackSchema } from './feedback.schema';
import {
  BarsAcceptedSchema,
  BarsRejectedSchema,
  GatewayErrorSchema,
  StageHealthSchema,
  StrategicProcessRequestSchema,
  StrategicProcessResponseSchema,
  TacticalProcessRequestSchema,
  TacticalProcessResponseSchema,
} from './gateway.schema';
import { IntegratedResultSchema } from './integrated-result.schema';
import { ModelUpdateSchema } from './model-update.schema';
import { StrategicContextSchema } from './strategic-context.schema';

/** Every message contract, by file name, as JSON Schema (draft 2020-12). */
export function jsonSchemas(): Record<string, unknown> {
  const schemas: Record<string, z.ZodType> = {
    bar: BarSchema,
    'bar-30m': Bar30mSchema,
    'bar-batch': BarBatchSchema,
    'integrated-result': IntegratedResultSchema,
    'result-batch': ResultBatchSchema,
    'strategic-context': StrategicContextSchema,
    'dead-letter-headers': DeadLetterHeadersSchema,
    experience: ExperienceSchema,
    'experience-batch': ExperienceBatchSchema,
    'model-update': ModelUpdateSchema,
    feedback: FeedbackSchema,
    'gateway-error': GatewayErrorSchema,
    'gateway-strategic-process-request': StrategicProcessRequestSchema,
    'gateway-strategic-process-response': StrategicProcessResponseSchema,
    'gateway-tactical-process-request': TacticalProcessRequestSchema,
    'gateway-tactical-process-response': TacticalProcessResponseSchema,
    'gateway-bars-accepted': BarsAcceptedSchema,
    'gateway-bars-rejected': BarsRejectedSchema,
    'gateway-stage-health': StageHealthSchema,
  };
  const out: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(schemas)) {
    out[name] = z.toJSONSchema(schema, { unrepresentable: 'any', io: 'input' });
  }
  return out;
}
