// Builds the native addons (binding.gyp: native/xts.c, the OpenSSL XTS addon, and native/fuse3.c, the
// FUSE 3 bridge) with node-gyp against the headers of the Node.js that runs this script, so no header
// download is ever attempted. A failed build is not fatal: without the XTS addon vault uses its
// node:crypto fallback and says so; without the FUSE addon (no libfuse3-dev) it cannot mount and says so.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

const prefix = dirname(dirname(process.execPath)); // /usr for /usr/bin/node
const args = ['rebuild'];
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
// npm runs install scripts with its own bundled node-gyp on PATH and in npm_config_node_gyp.
const bundled = process.env.npm_config_node_gyp;
const gyp = (extra) =>
  bundled
    ? spawnSync(process.execPath, [bundled, ...args, ...extra], { stdio: 'inherit' })
    : spawnSync('node-gyp', [...args, ...extra], { stdio: 'inherit' });
let result = gyp([]);
if (result.status !== 0) {
  // The FUSE addon's failure must not take the XTS addon with it: once more without it.
  result = gyp(['--', '-Dhas_fuse3=0']);
}
if (result.status !== 0) {
  process.stderr.write(
    'vault: warning: native XTS addon not built; the slower node:crypto fallback will be used\n',
  );
}
if (
  !existsSync(join(dirname(new URL(import.meta.url).pathname), '..', 'build', 'Release', 'vault_fuse.node'))
) {
  process.stderr.write(
    'vault: warning: the FUSE 3 addon was not built, so vault cannot mount; apt-get install libfuse3-dev, then npm rebuild\n',
  );
}
