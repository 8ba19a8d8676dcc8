/** Renders the configuration reference (README) from the zod schemas' descriptions and defaults. */
import { z } from 'zod';
import { envSchema, fileConfigSchema, profileSchema, SECRET_SETTINGS } from '../config';

function describe(schema: z.ZodType): { type: string; def: string; help: string } {
  const js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  const def = js.default === undefined ? '' : `\`${typeof js.default === 'object' ? JSON.stringify(js.default) : String(js.default)}\``;
  const type = Array.isArray(js.enum) ? (js.enum as string[]).map((v) => `\`${v}\``).join(' \\| ') : String(js.type ?? 'string');
  return { type, def, help: schema.description ?? '' };
}

export function renderConfigDoc(): string {
  const lines = ['| variable | type | default | meaning |', '| --- | --- | --- | --- |'];
  for (const [key, schema] of Object.entries(envSchema.shape)) {
    const d = describe(schema as z.ZodType);
    const fromFile = (SECRET_SETTINGS as readonly string[]).includes(key) ? `; or \`${key}_FILE\`: a file holding it (not both)` : '';
    lines.push(`| \`${key}\` | ${d.type} | ${d.def} | ${d.help}${fromFile} |`);
  }
  lines.push('', '| profile field | meaning |', '| --- | --- |');
  for (const [key, schema] of Object.entries(profileSchema.shape)) {
    lines.push(`| \`${key}\` | ${(schema as z.ZodType).description ?? ''} |`);
  }
  for (const section of ['kernels', 'docker', 'kubernetes', 'oidc'] as const) {
    lines.push('', `| ${section} field | type | default | meaning |`, '| --- | --- | --- | --- |');
    const shape = (fileConfigSchema.shape[section] as unknown as { unwrap(): z.ZodObject }).unwrap().shape;
    for (const [key, schema] of Object.entries(shape)) {
      const d = describe(schema as z.ZodType);
      lines.push(`| \`${key}\` | ${d.type} | ${d.def} | ${d.help} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}
