// Bundles src/recorder.js into ../dist/recorder.js (IIFE, minified, ES2018).
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
