// A full host disk cannot damage a vault (issue 7): the container is written in full at create, so once
// it exists every write inside it lands on space it already owns. On a 64 MiB tmpfs: create and mount a
// vault, fill the host filesystem with another file, then fill the vault's own filesystem: writes end
// with "no space" from inside, the vault stays consistent (e2fsck clean) and earlier files intact.
// `vault create` on a too-small disk fails with the free-space error and leaves no file.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FAST_COST,
  forceCleanup,
  isMounted,
  lacks,
  leftovers,
  makeTempDir,
  removeTempDirs,
  sh,
  vault,
} from './helpers.js';

const PASSWORD = `disk-full ${process.pid}`;
const secretArgs = ['--password-stdin', '--non-interactive', '--cost', FAST_COST];

describe.skipIf(lacks('mount'))('a full host disk', () => {
  let dir = '';
  let host = '';
  /** What a vault left under the host disk (the tmpfs mount itself is ours). */
  const remains = () => leftovers(host).filter((entry) => entry !== `mount at ${host}`);

  beforeAll(async () => {
    dir = await makeTempDir('vault-diskfull-');
    host = join(dir, 'host');
    mkdirSync(host);
    const mounted = await sh('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0700', 'tmpfs', host]);
    expect(mounted.code, mounted.stderr).toBe(0);
  });

  afterAll(async () => {
    await forceCleanup(host);
    if (isMounted(host)) await sh('umount', [host]);
    const cleaned = await forceCleanup(dir);
    await removeTempDirs();
    expect(cleaned, 'the test left these behind').toEqual([]);
  });

  it('cannot damage a vault: writes inside end with ENOSPC of the vault, e2fsck stays clean', async () => {
    const file = join(host, 'v.vol');
    const created = await vault(['create', '40M', file, ...secretArgs], { stdin: `${PASSWORD}\n` });
    expect(created.code, created.stderr).toBe(0);
    // Written in full: the host filesystem has the blocks already (tmpfs counts pages in use).
    const usage = await sh('du', ['--block-size=1', file]);
    expect(Number(usage.stdout.split('\t')[0])).toBeGreaterThanOrEqual(40 << 20);

    const mountpoint = join(dir, 'mnt');
    mkdirSync(mountpoint);
    const mounted = await vault(['mount', file, mountpoint, ...secretArgs], { stdin: `${PASSWORD}\n` });
    expect(mounted.code, mounted.stderr).toBe(0);
    const kept = randomBytes(1 << 20);
    writeFileSync(join(mountpoint, 'kept.bin'), kept);

    // Fill the host disk until it refuses.
    const filler = await sh('dd', ['if=/dev/zero', `of=${join(host, 'filler')}`, 'bs=1M'], 120_000);
    expect(filler.stderr).toMatch(/No space left on device/);
    const free = await sh('df', ['--output=avail', '-B1', host]);
    expect(Number(free.stdout.split('\n')[1])).toBeLessThan(1 << 20);

    // Now fill the vault's own filesystem: it must end with its own ENOSPC, not an I/O error.
    const inside = await sh(
      'dd',
      ['if=/dev/urandom', `of=${join(mountpoint, 'big.bin')}`, 'bs=1M', 'conv=fsync'],
      300_000,
    );
    expect(inside.stderr).toMatch(/No space left on device/);
    expect(inside.stderr).not.toMatch(/Input\/output error/);
    const synced = await sh('sync', ['-f', mountpoint]);
    expect(synced.code, synced.stderr).toBe(0);

    const dismounted = await vault(['dismount', mountpoint]);
    expect(dismounted.code, dismounted.stderr).toBe(0);
    expect(remains()).toEqual([]);

    const raw = await vault(['mount', file, '--no-filesystem', ...secretArgs], { stdin: `${PASSWORD}\n` });
    expect(raw.code, raw.stderr).toBe(0);
    try {
      const check = await sh('e2fsck', ['-fn', raw.stdout.trim()], 120_000);
      expect(check.code, `${check.stdout}${check.stderr}`).toBe(0);
    } finally {
      expect((await vault(['dismount', file])).code).toBe(0);
    }
    const again = await vault(['mount', file, mountpoint, '--read-only', ...secretArgs], {
      stdin: `${PASSWORD}\n`,
    });
    expect(again.code, again.stderr).toBe(0);
    const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
    expect(sha(readFileSync(join(mountpoint, 'kept.bin')))).toBe(sha(kept));
    expect((await vault(['dismount', mountpoint])).code).toBe(0);
    await sh('rm', ['-f', join(host, 'filler'), file]);
    expect(remains()).toEqual([]);
  });

  it('vault create on a disk that is too small: the free-space error, and no file', async () => {
    await sh('sh', ['-c', `rm -f ${host}/*`]);
    const filler = await sh('dd', ['if=/dev/zero', `of=${join(host, 'filler')}`, 'bs=1M', 'count=40']);
    expect(filler.code, filler.stderr).toBe(0);
    const before = readdirSync(host).sort();
    const result = await vault(['create', '32M', join(host, 'big.vol'), ...secretArgs], {
      stdin: `${PASSWORD}\n`,
    });
    expect(result.code).toBe(9);
    expect(result.stderr).toMatch(/^vault: error: not enough free space/m);
    expect(result.stderr).toMatch(/^vault: hint: /m);
    expect(readdirSync(host).sort()).toEqual(before);
    expect(remains()).toEqual([]);
  });
});
