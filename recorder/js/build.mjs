// Bundles src/recorder.js into ../dist/recorder.js (IIFE, minified, ES2018),
// and writes the crawler user-agent patterns of the crawler-user-agents
// package (a maintained list) to ../dist/crawler-user-agents.json, which the
// server embeds to drop bots' batches (the "drop_bots" recording rule).
import { readFile, writeFile } from 'node:fs/promises';
import { build } from 'esbuild';

await build({
  entryPoints: ['src/recorder.js'],
  outfile: '../dist/recorder.js',
  bundle: true,
  format: 'iife',
  minify: true,
  target: 'es2018',
  legalComments: 'none',
  banner: { js: '/* Trailmap recorder. Includes rrweb (MIT, https://github.com/rrweb-io/rrweb). */' },
  logLevel: 'warning',
});

const crawlers = JSON.parse(await readFile('node_modules/crawler-user-agents/crawler-user-agents.json', 'utf8'));
const { version } = JSON.parse(await readFile('node_modules/crawler-user-agents/package.json', 'utf8'));
await writeFile(
  '../dist/crawler-user-agents.json',
  JSON.stringify({ source: 'crawler-user-agents ' + version + ' (MIT)', patterns: crawlers.map((c) => c.pattern) }) + '\n'
);
