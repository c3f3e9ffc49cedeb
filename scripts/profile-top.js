#!/usr/bin/env node
/**
 * Summarizes V8 CPU profiles (node --cpu-prof): the functions and the packages with the most self time.
 * Usage: node scripts/profile-top.js <file.cpuprofile|dir> [--top N] [--json]
 */
const fs = require('node:fs');
const path = require('node:path');

const args = process.argv.slice(2);
if (args.length === 0 || args.includes('--help')) {
  console.log(
    "usage: node scripts/profile-top.js <file.cpuprofile|directory> [--top N] [--json]\nPrints the functions and packages with the most self time (the profile's samples).",
  );
  process.exit(args.length === 0 ? 1 : 0);
}
const top = Number(args[args.indexOf('--top') + 1]) || 25;
const target = args.find((a) => !a.startsWith('--') && a !== String(top));
const files = fs.statSync(target).isDirectory()
  ? fs
      .readdirSync(target)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => path.join(target, f))
  : [target];

/** Where a frame's code lives: a package of node_modules, the project (its file), node itself, or V8. */
function owner(url) {
  if (!url) return '(v8/native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith('node:')) return 'node';
  const dist = url.indexOf('/dist/');
  return dist >= 0 ? `skadi:${url.slice(dist + 6)}` : url;
}

const byFunction = new Map();
const byOwner = new Map();
let total = 0;
for (const file of files) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const dt = new Map();
  for (const [i, id] of profile.samples.entries()) dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  for (const [id, us] of dt) {
    const { callFrame: f } = nodes.get(id);
    const key = `${f.functionName || '(anonymous)'} ${f.url ? `${owner(f.url)}:${f.lineNumber + 1}` : ''}`.trim();
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const o =
      f.functionName === '(garbage collector)'
        ? '(garbage collector)'
        : f.functionName === '(idle)'
          ? '(idle)'
          : f.functionName === '(program)'
            ? '(program)'
            : owner(f.url).replace(/^skadi:.*/, 'skadi');
    byOwner.set(o, (byOwner.get(o) ?? 0) + us);
    if (f.functionName !== '(idle)') total += us;
  }
}
const rows = (map) =>
  [...map]
    .filter(([k]) => k !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, ms: Math.round(us / 1000), percent: Math.round((us / total) * 1000) / 10 }));
const result = { files: files.length, busy_ms: Math.round(total / 1000), functions: rows(byFunction), owners: rows(byOwner) };
if (args.includes('--json')) {
  console.log(JSON.stringify(result, null, 2));
} else {
  console.log(`busy ${result.busy_ms} ms in ${files.length} profile(s)\n\nself time by function:`);
  for (const r of result.functions) console.log(`${String(r.percent).padStart(5)}%  ${String(r.ms).padStart(6)} ms  ${r.name}`);
  console.log('\nself time by package:');
  for (const r of result.owners) console.log(`${String(r.percent).padStart(5)}%  ${String(r.ms).padStart(6)} ms  ${r.name}`);
}
