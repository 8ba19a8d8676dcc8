/** Rewrites the README's configuration table from the zod schemas (the readme test checks it). */
import fs from 'node:fs';
import path from 'node:path';
import { renderConfigDoc } from '../src/cli/config-doc';

const file = path.join(__dirname, '..', 'README.md');
const readme = fs.readFileSync(file, 'utf8');
const next = readme.replace(/(<!-- config-doc:begin -->\n)[\s\S]*?(\n<!-- config-doc:end -->)/, (_m, a: string, b: string) => `${a}${renderConfigDoc().trim()}${b}`);
fs.writeFileSync(file, next);
