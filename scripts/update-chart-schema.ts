/** Rewrites `config` in the chart's values.schema.json from the zod schema (tests/helm checks it). */
import fs from 'node:fs';
import path from 'node:path';
import { fileConfigJsonSchema } from '../src/config';

const file = path.join(__dirname, '..', 'helm', 'spawngate', 'values.schema.json');
const schema = JSON.parse(fs.readFileSync(file, 'utf8')) as { properties: Record<string, unknown> };
schema.properties.config = { ...fileConfigJsonSchema(), description: 'SPAWNGATE_CONFIG, generated from the service schema (npm run config-doc)' };
fs.writeFileSync(file, `${JSON.stringify(schema, null, 2)}\n`);
