// The package as a user installs it: `npm pack` in this checkout, then `npm install -g` of that tarball
// into a temporary prefix (dependencies from npm's cache when they are there, both native addons
// compiled here against this Node's headers), then the installed `vault` run from outside the checkout:
// --version, create, info, the man page, and the library entry point. No root needed.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST_COST, makeTempDir, ROOT, type RunResult, removeTempDirs } from './helpers.js';

const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
// Only these two may run install scripts (npm 12 blocks the others): ours builds native/xts.c and
// native/fuse3.c, argon2 compiles itself when its prebuilt binary does not load.
const ALLOW_SCRIPTS = '--allow-scripts=vault,argon2';

let dir = '';
let prefix = '';
let installed = '';
let installOutput = '';

function run(command: string, args: readonly string[], cwd: string, stdin = ''): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

async function runOk(command: string, args: readonly string[], cwd: string, stdin = ''): Promise<string> {
  const result = await run(command, args, cwd, stdin);
  if (result.code !== 0)
    throw new Error(`${command} ${args.join(' ')} exited ${result.code}:\n${result.stderr}`);
  return result.stdout;
}

/** The installed command, run from the temporary directory (not from this checkout). */
function installedVault(args: readonly string[], stdin = ''): Promise<RunResult> {
  return run(join(prefix, 'bin', 'vault'), args, dir, stdin);
}

describe('npm pack, then npm install -g of the tarball', () => {
  beforeAll(async () => {
    dir = await makeTempDir('vault-package-');
    prefix = join(dir, 'prefix');
    // `npm pack` runs `prepare` (tsc, then the man page), as it does before a publish.
    const packed = await runOk('npm', ['pack', '--silent', '--pack-destination', dir], ROOT);
    const tarball = join(dir, packed.trim().split('\n').pop() ?? '');
    expect(tarball).toBe(join(dir, `vault-${version}.tgz`));
    // --foreground-scripts: the install scripts' output (node-gyp's) is kept, to check what they did.
    const install = await run(
      'npm',
      [
        'install',
        '-g',
        '--prefix',
        prefix,
        ALLOW_SCRIPTS,
        '--foreground-scripts',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        tarball,
      ],
      dir,
    );
    installOutput = `${install.stdout}${install.stderr}`;
    if (install.code !== 0) throw new Error(`npm install -g exited ${install.code}:\n${installOutput}`);
    installed = join(prefix, 'lib', 'node_modules', 'vault');
  }, 120_000);

  afterAll(removeTempDirs);

  it('installs the command, the man page and both addons built against the local Node headers', () => {
    expect(existsSync(join(prefix, 'bin', 'vault'))).toBe(true);
    const man = readFileSync(join(prefix, 'share', 'man', 'man1', 'vault.1'), 'utf8');
    for (const command of ['create', 'mount', 'dismount', 'info', 'key add', 'header backup'])
      expect(man).toContain(`.SS "vault ${command}"`);
    expect(existsSync(join(installed, 'build', 'Release', 'vault_xts.node'))).toBe(true);
    expect(existsSync(join(installed, 'build', 'Release', 'vault_fuse.node'))).toBe(true);
    // node-gyp used local Node headers (scripts/build-addon.mjs passes the running node's prefix; an npm
    // `nodedir` setting wins) and downloaded nothing.
    const gypConfig = readFileSync(join(installed, 'build', 'config.gypi'), 'utf8');
    const nodedir = /"nodedir": "([^"]+)"/.exec(gypConfig)?.[1] ?? '(none)';
    expect(existsSync(join(nodedir, 'include', 'node', 'node_api.h')), nodedir).toBe(true);
    expect(installOutput).toMatch(/gyp info ok/);
    expect(installOutput).not.toMatch(/gyp http GET|node-v[\d.]+-headers/i);
    // Nothing the package does not need at run time: no sources, tests or maps.
    for (const absent of ['src', 'test', 'dist/cli/main.js.map', 'scripts/setup.sh'])
      expect(existsSync(join(installed, absent)), absent).toBe(false);
  });

  it('vault --version prints the package version', async () => {
    expect(await installedVault(['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('creates a vault and reads its header with the installed command, through the OpenSSL addon', async () => {
    const secret = ['--password-stdin', '--cost', FAST_COST];
    const created = await installedVault(
      ['create', '2M', 'installed.vol', '--filesystem', 'none', ...secret],
      'installed password\n',
    );
    // stderr only has the warning that cost level 1 is weak.
    expect(created.stderr).not.toMatch(/vault: error/);
    expect(created.code).toBe(0);
    expect(created.stdout).toBe('Created installed.vol: 2 MiB, no filesystem.\n');
    const info = await installedVault(['info', 'installed.vol', '--json', ...secret], 'installed password\n');
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({
      fileSize: 2 * 1024 * 1024,
      cipher: 'aes-256-xts',
      xtsImplementation: 'openssl-addon',
      headers: { primary: { state: 'ok' }, backup: { state: 'ok' } },
    });
  });

  it('the library entry point (package.json exports) resolves and opens that vault', async () => {
    const script = join(prefix, 'lib', 'open.mjs');
    writeFileSync(
      script,
      `import { openVault, Secret } from 'vault';
const secret = await Secret.fromInputs({ password: Buffer.from('installed password') });
const vault = await openVault(${JSON.stringify(join(dir, 'installed.vol'))}, secret, { costLevel: ${FAST_COST}, readOnly: true });
process.stdout.write(String(vault.size));
await vault.close();
secret.wipe();
`,
    );
    const result = await run(process.execPath, [script], dir);
    expect(result.stderr).toBe('');
    expect(Number(result.stdout)).toBe(2 * 1024 * 1024 - 262144);
  });
});
