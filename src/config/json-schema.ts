/**
 * The YAML configuration as JSON Schema (draft-07, what Helm validates values with). The chart's
 * values.schema.json embeds it under `config`, so a bad profile or kernels setting fails
 * `helm install` with the same rules the service applies at start-up. Refinements across fields
 * (request ≤ limit) cannot be expressed there; the service still checks them.
 */
import { z } from 'zod';
import { fileConfigSchema } from './schema';

export function fileConfigJsonSchema(): Record<string, unknown> {
  const { $schema: _drop, ...schema } = z.toJSONSchema(fileConfigSchema, { io: 'input', target: 'draft-7', unrepresentable: 'any' }) as Record<string, unknown>;
  return schema;
}
