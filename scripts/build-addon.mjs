// Builds native/xts.c (the OpenSSL XTS addon) with node-gyp against the headers of the Node.js that
// runs this script, so no header download is ever attempted. A failed build is not fatal: vault then
// uses its node:crypto fallback and says so (`vault benchmark`, `vault info`).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

const prefix = dirname(dirname(process.execPath)); // /usr for /usr/bin/node
const args = ['rebuild'];
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
// npm runs install scripts with its own bundled node-gyp on PATH and in npm_config_node_gyp.
const bundled = process.env.npm_config_node_gyp;
const result = bundled
  ? spawnSync(process.execPath, [bundled, ...args], { stdio: 'inherit' })
  : spawnSync('node-gyp', args, { stdio: 'inherit' });
if (result.status !== 0) {
  process.stderr.write(
    'vault: warning: native XTS addon not built; the slower node:crypto fallback will be used\n',
  );
}
