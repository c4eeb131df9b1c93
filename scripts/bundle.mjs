// Bundles the two programs vault starts, the CLI (dist/cli/main.js) and the mount daemon
// (dist/fuse/daemon.js), in place after tsc: `npm run build`, `prepare` (hence `npm pack`) and the e2e
// suite's global setup run it. Node 20 loads an ES module graph file by file; the ~45 modules each of
// them loads took longer than Node's own start-up, twice per `vault mount` (one CLI, one daemon).
// Code loaded only on demand (commands, foreign formats, argon2) stays in chunks, dist/chunks/, loaded
// when used; chunks sit at the same depth as dist/cli and dist/fuse, so the paths the code finds from
// import.meta.url (../../build/Release/*.node, ../../package.json, ../fuse/daemon.js) stay right.
// The rest of dist/ (the library API, dist/container/index.js) is tsc's output, unbundled. Without
// this step (tsc alone) everything works the same, only slower to start.
import { readFileSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const MARK = '// bundled by scripts/bundle.mjs';

// Bundling a bundle would stack the banner twice: only tsc's fresh output is bundled.
if (readFileSync(`${root}dist/cli/main.js`, 'utf8').startsWith(MARK)) {
  console.error('scripts/bundle.mjs: dist/ is bundled already; run tsc -p tsconfig.build.json first');
  process.exit(1);
}

// Chunk names carry a hash of their content: last build's chunks would otherwise stay beside the new.
rmSync(`${root}dist/chunks`, { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: ['dist/cli/main.js', 'dist/fuse/daemon.js'],
  outdir: 'dist',
  outbase: 'dist',
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // argon2 loads its prebuilt binary relative to its own package: it stays a package import.
  external: ['argon2'],
  // commander is CommonJS: its require() of Node's modules needs a require in an ES module.
  banner: {
    js: `${MARK}\nimport { createRequire as __vaultRequire } from 'node:module';\nconst require = __vaultRequire(import.meta.url);`,
  },
  legalComments: 'none',
  logLevel: 'warning',
});
