// Bundles the two programs vault starts, the CLI (dist/cli/main.js) and the mount daemon
// (dist/fuse/daemon.js), each into one file, in place after tsc: `npm run build`, `prepare` (hence
// `npm pack`) and the e2e suite's global setup run it. Node 20 loads an ES module graph file by file
// (resolve, read, compile, link each); the ~45 modules of each process cost more CPU than Node's own
// start-up, twice per `vault mount`: `vault --version` went from 0.39 to 0.22 s of CPU, the daemon's
// start from 0.26 to 0.22 s. What a command loads on demand (other commands, foreign formats) is in the
// same file, evaluated only when imported. Both files sit at the depth of the modules they replace,
// so the paths found from import.meta.url (../../build/Release/*.node, the package root,
// ../fuse/daemon.js) stay right. The rest of dist/ (the library API, dist/container/index.js) is
// tsc's output, unbundled. Without this step (tsc alone) everything works the same, only slower to start.
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const MARK = '// bundled by scripts/bundle.mjs';

// Bundling a bundle would stack the banner twice: only tsc's fresh output is bundled.
if (readFileSync(`${root}dist/cli/main.js`, 'utf8').startsWith(MARK)) {
  console.error('scripts/bundle.mjs: dist/ is bundled already; run tsc -p tsconfig.build.json first');
  process.exit(1);
}

await build({
  absWorkingDir: root,
  entryPoints: ['dist/cli/main.js', 'dist/fuse/daemon.js'],
  outdir: 'dist',
  outbase: 'dist',
  allowOverwrite: true,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // argon2 loads its prebuilt binary relative to its own package: it stays a package import.
  external: ['argon2'],
  // commander is CommonJS: its require() of Node's modules needs a require in an ES module.
  banner: {
    js: `${MARK}\nimport { createRequire as __vaultRequire } from 'node:module';\nconst require = __vaultRequire(import.meta.url);`,
  },
  // VAULT_DEBUG=1 stack traces name the source files, not bundle lines (bin/vault turns source maps on;
  // the maps, like tsc's, stay out of the npm package).
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
});
