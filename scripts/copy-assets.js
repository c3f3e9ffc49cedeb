// Copies the non-TypeScript files the compiled code reads at run time (Lua scripts, SQL migrations).
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
for (const dir of ['cloud/queue/lua', 'cloud/store/migrations']) {
  fs.cpSync(path.join(root, dir), path.join(root, 'dist', dir), { recursive: true });
}
