// vault resize as a user runs it (real bin/vault, FUSE, loop devices, ext4, as root): the files survive,
// df shows the new size, shrinking and mounted vaults are refused, and a resize killed half-way leaves a
// vault that opens and that a second resize finishes.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  FAST_COST,
  forceCleanup,
  lacks,
  leftovers,
  makeTempDir,
  removeTempDirs,
  sh,
  VAULT_BIN,
  vault,
  waitFor,
} from './helpers.js';

const PASSWORD = 'resize password';
const secretArgs = ['--password-stdin', '--non-interactive', '--cost', FAST_COST];
const MiB = 2 ** 20;

let dir = '';

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

const run = (args: string[]) =>
  vault([...args, ...secretArgs], { stdin: `${PASSWORD}\n`, timeoutMs: 300_000 });

async function mount(file: string): Promise<string> {
  const mountpoint = join(dir, 'mnt');
  mkdirSync(mountpoint, { recursive: true });
  const result = await run(['mount', file, mountpoint]);
  expect(result.code, result.stderr).toBe(0);
  return mountpoint;
}

async function dismount(mountpoint: string): Promise<void> {
  const result = await vault(['dismount', mountpoint]);
  expect(result.code, result.stderr).toBe(0);
}

/** Total bytes of the filesystem mounted at `mountpoint`, as df reports it. */
async function dfTotal(mountpoint: string): Promise<number> {
  const result = await sh('df', ['-B1', '--output=size', mountpoint]);
  return Number(result.stdout.trim().split('\n')[1]);
}

/** A 64 MiB ext4 vault holding a few files; returns their hashes. */
async function vaultWithFiles(name: string): Promise<{ file: string; files: Map<string, string> }> {
  const file = join(dir, name);
  const created = await run(['create', '64M', file]);
  expect(created.code, created.stderr).toBe(0);
  const mountpoint = await mount(file);
  const files = new Map<string, string>();
  for (const [relative, data] of [
    ['a.txt', Buffer.from('before the resize\n')],
    ['big.bin', randomBytes(20 * MiB)],
    ['sub/c.bin', randomBytes(4097)],
  ] as const) {
    mkdirSync(join(mountpoint, relative, '..'), { recursive: true });
    writeFileSync(join(mountpoint, relative), data);
    files.set(relative, sha256(data));
  }
  await dismount(mountpoint);
  return { file, files };
}

function expectFiles(mountpoint: string, files: Map<string, string>): void {
  for (const [relative, hash] of files) {
    expect(sha256(readFileSync(join(mountpoint, relative))), relative).toBe(hash);
  }
}

describe.skipIf(lacks('mount'))('vault resize', () => {
  afterEach(async () => {
    const cleaned = await forceCleanup(dir);
    expect(cleaned, 'a test left these behind').toEqual([]);
  });

  afterAll(async () => {
    await removeTempDirs();
  });

  it('grows 64 MiB to 128 MiB: every file kept, df shows the new size', async () => {
    dir = await makeTempDir('vault-e2e-resize-');
    const { file, files } = await vaultWithFiles('grow.vol');
    let mountpoint = await mount(file);
    const before = await dfTotal(mountpoint);
    await dismount(mountpoint);

    const resized = await run(['resize', file, '128M']);
    expect(resized.stderr).toBe('');
    expect(resized.code).toBe(0);
    expect(resized.stdout).toMatch(/ext4 filesystem now fills the volume/);
    expect(statSync(file).size).toBe(128 * MiB);

    mountpoint = await mount(file);
    const after = await dfTotal(mountpoint);
    // ext4 keeps some blocks for its own metadata; the rest of the 64 MiB grows df's total.
    expect(after - before).toBeGreaterThan(56 * MiB);
    expect(after).toBeLessThanOrEqual(128 * MiB - 262144);
    expectFiles(mountpoint, files);
    writeFileSync(join(mountpoint, 'fill.bin'), randomBytes(80 * MiB)); // would not fit in 64 MiB
    await dismount(mountpoint);

    // "+size" grows by that much. With a PATH without the sbin directories (a user's sudo -E, cron):
    // e2fsck and resize2fs are found all the same (src/host/process.ts), not reported as "exit -1".
    const grownBy = await vault(['resize', file, '+32M', ...secretArgs], {
      stdin: `${PASSWORD}\n`,
      timeoutMs: 300_000,
      env: { PATH: '/usr/bin:/bin' },
    });
    expect(grownBy.stdout).toMatch(/ext4 filesystem now fills the volume/);
    expect(grownBy.code, grownBy.stderr).toBe(0);
    expect(statSync(file).size).toBe(160 * MiB);
    mountpoint = await mount(file);
    expectFiles(mountpoint, files);
    await dismount(mountpoint);
    expect(leftovers(dir)).toEqual([]);
  });

  it('refuses shrinking (exit 2) and a mounted vault (exit 5), changing nothing', async () => {
    dir = await makeTempDir('vault-e2e-resize-');
    const file = join(dir, 'refuse.vol');
    expect((await run(['create', '64M', file])).code).toBe(0);
    const hash = sha256(readFileSync(file));

    const shrink = await run(['resize', file, '32M']);
    expect(shrink.code).toBe(2);
    expect(shrink.stderr).toMatch(/shrinking a vault is not supported/);

    expect(sha256(readFileSync(file))).toBe(hash);

    const mountpoint = await mount(file);
    const busy = await run(['resize', file, '128M']);
    expect(busy.code).toBe(5);
    expect(busy.stderr).toMatch(/mounted at/);
    expect(statSync(file).size).toBe(64 * MiB);
    await dismount(mountpoint);
  });

  it('a resize killed half-way leaves a vault that opens; resizing again finishes it', async () => {
    dir = await makeTempDir('vault-e2e-resize-');
    const { file, files } = await vaultWithFiles('crash.vol');
    const child = spawn(process.execPath, [VAULT_BIN, 'resize', file, '2G', ...secretArgs], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    child.stdin.end(`${PASSWORD}\n`);
    const exited = new Promise<void>((resolveExit) => child.on('close', () => resolveExit()));
    // Kill it while it fills the new area: the file has started to grow, far from 2 GiB.
    await waitFor(() => statSync(file).size > 256 * MiB, 'the vault file to grow');
    child.kill('SIGKILL');
    await exited;
    expect(statSync(file).size).toBeLessThan(2048 * MiB);

    const info = await run(['info', file, '--json']);
    expect(info.code, info.stderr).toBe(0);
    expect((JSON.parse(info.stdout) as { dataSize: number }).dataSize).toBe(64 * MiB - 262144);

    const finished = await run(['resize', file, '2G']);
    expect(finished.code, finished.stderr).toBe(0);
    expect(statSync(file).size).toBe(2048 * MiB);
    const healthy = await run(['info', file, '--json']);
    const headers = (JSON.parse(healthy.stdout) as { headers: Record<string, { state: string }> }).headers;
    expect(headers.primary?.state).toBe('ok');
    expect(headers.backup?.state).toBe('ok');

    const mountpoint = await mount(file);
    expectFiles(mountpoint, files);
    expect(await dfTotal(mountpoint)).toBeGreaterThan(1900 * MiB);
    await dismount(mountpoint);
    expect(leftovers(dir)).toEqual([]);
  });
});
