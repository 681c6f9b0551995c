// Builds the UI bundles into ../dist (embedded by go:embed in ui/web.go):
//   - every src/pages/NAME.js (one per dashboard page), src/share.js and
//     src/app.css, as content-hashed files listed in dist/manifest.json;
//   - src/export.js as one classic script + stylesheet (dist/export/), which
//     the server inlines into downloaded clips, and src/render.js likewise
//     for the pages its renderer turns into videos.
import * as esbuild from 'esbuild';
import { readdirSync, rmSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', 'dist');
const src = join(here, 'src');

for (const f of readdirSync(dist)) {
  if (f !== 'README.md') rmSync(join(dist, f), { recursive: true, force: true });
}

const entries = { 'app': join(src, 'app.css'), 'share': join(src, 'share.js') };
for (const f of readdirSync(join(src, 'pages'))) {
  if (f.endsWith('.js')) entries['pages/' + f.slice(0, -3)] = join(src, 'pages', f);
}

const common = {
  bundle: true,
  minify: true,
  target: 'es2020',
  legalComments: 'linked',
  logLevel: 'warning',
  loader: { '.svg': 'dataurl' },
};

const result = await esbuild.build({
  ...common,
  entryPoints: entries,
  outdir: join(dist, 'assets'),
  format: 'esm',
  splitting: true,
  entryNames: '[dir]/[name]-[hash]',
  chunkNames: 'chunks/[name]-[hash]',
  assetNames: 'assets/[name]-[hash]',
  metafile: true,
});

// manifest: logical name (pages/sessions.js, pages/sessions.css, app.css) → hashed path under assets/.
const manifest = {};
for (const [out, meta] of Object.entries(result.metafile.outputs)) {
  if (!meta.entryPoint) continue;
  const entry = Object.entries(entries).find(([, p]) => relative(here, p) === meta.entryPoint || p === join(here, meta.entryPoint));
  if (!entry) continue;
  const rel = relative(join(dist, 'assets'), join(here, out));
  const ext = out.endsWith('.css') ? '.css' : '.js';
  manifest[entry[0] + ext] = rel;
  if (meta.cssBundle) manifest[entry[0] + '.css'] = relative(join(dist, 'assets'), join(here, meta.cssBundle));
}
writeFileSync(join(dist, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');

// The offline player: one classic script and one stylesheet, inlined into clip downloads.
mkdirSync(join(dist, 'export'), { recursive: true });
await esbuild.build({
  ...common,
  legalComments: 'inline',
  entryPoints: { player: join(src, 'export.js') },
  outdir: join(dist, 'export'),
  format: 'iife',
});
const js = readFileSync(join(dist, 'export', 'player.js'), 'utf8');
if (/<\/script/i.test(js)) throw new Error('export bundle contains </script');

// The server's render page (render package): the same, for headless Chromium.
await esbuild.build({
  ...common,
  legalComments: 'inline',
  entryPoints: { render: join(src, 'render.js') },
  outdir: join(dist, 'export'),
  format: 'iife',
});
if (/<\/script/i.test(readFileSync(join(dist, 'export', 'render.js'), 'utf8'))) throw new Error('render bundle contains </script');
