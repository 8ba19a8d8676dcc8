/** README stays true: its configuration table is exactly what the schema renders. */
import fs from 'node:fs';
import path from 'node:path';
import { renderConfigDoc } from '../src/cli/config-doc';

test('README configuration table matches the zod schema (regenerate with `spawngate config-doc`)', () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
  const m = /<!-- config-doc:begin -->\n([\s\S]*?)\n<!-- config-doc:end -->/.exec(readme);
  expect(m).not.toBeNull();
  expect(m![1]!.trim()).toBe(renderConfigDoc().trim());
});
