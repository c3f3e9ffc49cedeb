/** `npm run bench [-- part…] [--smoke] [--jobs N]`: runs benchmarks against real MariaDB + Redis and prints one JSON object. */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { benchDispatch } from './dispatch';

const PARTS = ['dispatch'] as const;
type Part = (typeof PARTS)[number];

const program = new Command();
program
  .name('bench')
  .description(`Runs the benchmarks (${PARTS.join(', ')}), prints one JSON object and writes bench/results/latest.json.`)
  .argument('[parts...]', `which parts to run (default: all): ${PARTS.join(', ')}`)
  .option('--smoke', 'a small, quick run (CI uses it so the benchmarks cannot rot)')
  .option('--jobs <n>', 'dispatch: jobs pushed one after another', '1000')
  .action(async (parts: string[], opts: { smoke?: boolean; jobs: string }) => {
    const unknown = parts.filter((p) => !PARTS.includes(p as Part));
    if (unknown.length) throw new Error(`unknown part "${unknown[0]}" (known: ${PARTS.join(', ')})`);
    const selected = (parts.length ? parts : PARTS) as Part[];
    const progress = (line: string) => process.stderr.write(`${line}\n`);
    const results: Record<string, unknown> = { started_at: new Date().toISOString(), smoke: !!opts.smoke };
    for (const part of selected) {
      if (part === 'dispatch') results.dispatch = await benchDispatch({ jobs: opts.smoke ? 100 : Number(opts.jobs) }, progress);
    }
    const json = JSON.stringify(results, null, 2);
    const dir = path.resolve(__dirname, '../../bench/results');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'latest.json'), json + '\n');
    console.log(json);
  });

program.parseAsync(process.argv).catch((err) => {
  console.error(`bench: ${err?.stack ?? err}`);
  process.exitCode = 1;
});
