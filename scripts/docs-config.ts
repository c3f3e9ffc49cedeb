/** Writes docs/configuration.md from the settings table: `npm run docs:config` (after changing a setting). */
import fs from 'node:fs';
import path from 'node:path';
import { renderConfigurationDoc } from '../config/docs';

const target = path.resolve(__dirname, '../../docs/configuration.md');
fs.writeFileSync(target, renderConfigurationDoc());
console.log(`wrote ${path.relative(process.cwd(), target)}`);
