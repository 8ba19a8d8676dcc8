// Copies non-TypeScript files the service reads at run time (SQL migrations) next to the compiled code.
const fs = require('node:fs');
const path = require('node:path');
const src = path.join(__dirname, '..', 'src', 'db', 'migrations');
const dst = path.join(__dirname, '..', 'dist', 'db', 'migrations');
fs.mkdirSync(dst, { recursive: true });
for (const f of fs.readdirSync(src)) if (f.endsWith('.sql')) fs.copyFileSync(path.join(src, f), path.join(dst, f));
// The admin page's static files (its script is compiled by src/admin-ui/tsconfig.json).
const uiSrc = path.join(__dirname, '..', 'src', 'admin-ui');
const uiDst = path.join(__dirname, '..', 'dist', 'admin-ui');
fs.mkdirSync(uiDst, { recursive: true });
for (const f of fs.readdirSync(uiSrc)) if (f.endsWith('.html') || f.endsWith('.css')) fs.copyFileSync(path.join(uiSrc, f), path.join(uiDst, f));
