// Copies non-TypeScript files the service reads at run time (SQL migrations) next to the compiled code.
const fs = require('node:fs');
const path = require('node:path');
const src = path.join(__dirname, '..', 'src', 'db', 'migrations');
const dst = path.join(__dirname, '..', 'dist', 'db', 'migrations');
fs.mkdirSync(dst, { recursive: true });
for (const f of fs.readdirSync(src)) if (f.endsWith('.sql')) fs.copyFileSync(path.join(src, f), path.join(dst, f));
