// Prints the summaries the chaos tests wrote (.tmp/chaos/*.json) as one JSON object.
const fs = require('node:fs');
const path = require('node:path');

const dir = path.resolve(__dirname, '../.tmp/chaos');
const runs = {};
for (const file of fs.existsSync(dir)
  ? fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
  : []) {
  runs[file.replace(/\.json$/, '')] = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
}
const total = (key) => Object.values(runs).reduce((n, r) => n + (r[key] ?? 0), 0);
const totals = Object.fromEntries(
  ['accepted', 'terminal', 'lost', 'executed_twice', 'events_delivered', 'other_5xx', 'requests_tried', 'responses_5xx'].map((key) => [
    key,
    total(key),
  ]),
);
console.log(JSON.stringify({ runs, totals }, null, 2));
