// `vault create --hidden <size> <file>` on an existing vault, as a user runs it (issue 8): files in the
// outer exfat volume survive, the hidden volume mounts with its own secret, --protect-hidden works, and
// every refusal (ext4, too large, mounted, wrong options) leaves the vault file byte-identical.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { filesystemRecord, kernelHasDriver } from '../../src/host/filesystems.js';
import { FAST_COST, lacks, leftovers, useTempDir, vault, vaultOk } from './helpers.js';

const cost = ['--cost', FAST_COST];
const OUTER = 'outer password 1\n';
const HIDDEN = 'hidden password 2\n';
let dir: string;

useTempDir('vault-hidden-add-', (made) => {
  dir = made;
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const fileHash = async (path: string) => sha256(await readFile(path));

describe.skipIf(lacks('mount'))('adding a hidden volume to an existing vault', () => {
  it('an exfat vault with files gets a hidden volume; both keep their files', async () => {
    const file = join(dir, 'that.vol');
    const mnt = join(dir, 'mnt');
    await mkdir(mnt);
    await vaultOk(['create', '128M', file, '--filesystem', 'exfat', '--password-stdin'], OUTER);
    await vaultOk(['mount', file, mnt, '--password-stdin'], OUTER);
    const decoys = { 'taxes.pdf': Buffer.alloc(9 * 2 ** 20, 7), 'notes.txt': Buffer.from('nothing here\n') };
    for (const [name, content] of Object.entries(decoys)) await writeFile(join(mnt, name), content);
    await vaultOk(['dismount', mnt]);
    const outerInfo = (await vaultOk(['info', file, '--password-stdin', '--json'], OUTER)).stdout;

    const added = await vaultOk(['create', '--hidden', '64M', file, '--password-stdin'], OUTER + HIDDEN);
    expect(added.stdout).toMatch(/Added a hidden volume of 64 MiB \(ext4\) to .*that\.vol/);
    expect(added.stderr).toMatch(/vault: warning: a hidden volume already in .* is replaced/);

    await vaultOk(['mount', file, mnt, '--password-stdin'], HIDDEN);
    await writeFile(join(mnt, 'deep.txt'), 'only behind the second password');
    expect((await vaultOk(['info', file, '--password-stdin', '--json'], HIDDEN)).stdout).toMatch(
      /"kind": ?"hidden"/,
    );
    await vaultOk(['dismount', mnt]);

    await vaultOk(['mount', file, mnt, '--password-stdin'], OUTER);
    for (const [name, content] of Object.entries(decoys)) {
      expect(await fileHash(join(mnt, name)), name).toBe(sha256(content));
    }
    await vaultOk(['dismount', mnt]);
    // The outer header is untouched: info with the outer secret says exactly what it said before.
    expect((await vaultOk(['info', file, '--password-stdin', '--json'], OUTER)).stdout).toBe(outerInfo);

    await vaultOk(['mount', file, mnt, '--password-stdin', '--protect-hidden'], OUTER + HIDDEN);
    expect((await vault(['list'])).stdout).toMatch(/hidden protected/);
    await writeFile(join(mnt, 'more.txt'), 'a small write, far from the hidden volume');
    const protectedDismount = await vaultOk(['dismount', mnt]);
    expect(protectedDismount.stderr).not.toMatch(/protection refused/);
    await vaultOk(['mount', file, mnt, '--password-stdin', '--read-only'], HIDDEN);
    expect(await readFile(join(mnt, 'deep.txt'), 'utf8')).toBe('only behind the second password');
    await vaultOk(['dismount', mnt]);
    expect(leftovers(dir)).toEqual([]);
  });

  it('a vfat vault gets one too; the bytes of its outer volume stay as they were', async () => {
    const file = join(dir, 'fat.vol');
    if (kernelHasDriver(filesystemRecord('vfat')!)) {
      await vaultOk(['create', '48M', file, '--filesystem', 'vfat', '--password-stdin'], OUTER);
    } else {
      // This kernel cannot mount vfat, so create refuses it before writing anything (the registry's
      // check); a vfat vault to carry elsewhere is still made by formatting the block file by hand.
      const refused = await vault(
        ['create', '48M', file, '--filesystem', 'vfat', '--password-stdin', ...cost],
        {
          stdin: OUTER,
        },
      );
      expect(refused.code).toBe(6);
      expect(refused.stderr).toMatch(
        /^vault: error: this kernel has no vfat driver: a vfat vault could not be mounted here$/m,
      );
      expect(leftovers(dir)).toEqual([]);
      await vaultOk(['create', '48M', file, '--filesystem', 'none', '--password-stdin'], OUTER);
      const exposed = await vaultOk(['mount', file, '--no-filesystem', '--password-stdin'], OUTER);
      const made = spawnSync('mkfs.vfat', [exposed.stdout.trim()], { encoding: 'utf8' });
      expect(made.status, made.stderr).toBe(0);
      await vaultOk(['dismount', file]);
    }
    const before = await readFile(file);
    await vaultOk(['create', '--hidden', '16M', file, '--password-stdin'], OUTER + HIDDEN);
    const after = await readFile(file);
    // Changed: the two hidden header sectors and the hidden area (the last 16 MiB of the data area).
    const hiddenStart = after.length - 131072 - 16 * 2 ** 20;
    const outside = (bytes: Buffer) =>
      sha256(
        Buffer.concat([
          bytes.subarray(0, 65536),
          bytes.subarray(65536 + 4096, hiddenStart),
          bytes.subarray(after.length - 131072, after.length - 65536),
          bytes.subarray(after.length - 65536 + 4096),
        ]),
      );
    expect(outside(after)).toBe(outside(before));
    const mnt = join(dir, 'fat-hidden');
    await mkdir(mnt);
    await vaultOk(['mount', file, mnt, '--password-stdin'], HIDDEN);
    await writeFile(join(mnt, 'deep.txt'), 'in the tail of a vfat vault');
    await vaultOk(['dismount', mnt]);
    expect(leftovers(dir)).toEqual([]);
  });

  it('refuses ext4, a size that does not fit, a mounted vault and options of a new vault; the file stays as it was', async () => {
    const ext4 = join(dir, 'ext4.vol');
    await vaultOk(['create', '32M', ext4, '--password-stdin'], OUTER);
    const ext4Before = await fileHash(ext4);
    const refusedExt4 = await vault(['create', '--hidden', '8M', ext4, '--password-stdin', ...cost], {
      stdin: OUTER + HIDDEN,
    });
    expect(refusedExt4.code).toBe(2);
    expect(refusedExt4.stderr).toMatch(/holds ext4/);
    expect(refusedExt4.stderr).toMatch(/vault: hint: .*exfat or vfat/);
    expect(await fileHash(ext4)).toBe(ext4Before);

    const exfat = join(dir, 'small.vol');
    await vaultOk(['create', '32M', exfat, '--filesystem', 'exfat', '--password-stdin'], OUTER);
    const exfatBefore = await fileHash(exfat);
    const tooLarge = await vault(['create', '--hidden', '31M', exfat, '--password-stdin', ...cost], {
      stdin: OUTER + HIDDEN,
    });
    expect(tooLarge.code).toBe(2);
    expect(tooLarge.stderr).toMatch(/does not fit/);
    expect(tooLarge.stderr).toMatch(
      /the largest hidden volume that fits is \d+(\.\d)? MiB: give --hidden \d+M or less/,
    );
    expect(await fileHash(exfat)).toBe(exfatBefore);

    const wrong = await vault(['create', '--hidden', '8M', exfat, '--password-stdin', ...cost], {
      stdin: `wrong\n${HIDDEN}`,
    });
    expect(wrong.code).toBe(3);

    for (const extra of [['--filesystem', 'vfat'], ['--quick'], ['--force']]) {
      const refused = await vault(
        ['create', '--hidden', '8M', exfat, ...extra, '--password-stdin', ...cost],
        {
          stdin: OUTER + HIDDEN,
        },
      );
      expect(refused.code, extra.join(' ')).toBe(2);
      expect(refused.stderr).toMatch(/cannot be used when adding a hidden volume/);
    }
    const noSize = await vault(['create', exfat, '--password-stdin', ...cost], { stdin: OUTER });
    expect(noSize.code).toBe(2);
    expect(noSize.stderr).toMatch(/a size and a file are needed/);
    const missing = await vault(['create', '--hidden', '8M', join(dir, 'nope.vol'), '--password-stdin'], {
      stdin: OUTER + HIDDEN,
    });
    expect(missing.code).toBe(4);

    const mnt = join(dir, 'busy');
    await mkdir(mnt);
    await vaultOk(['mount', exfat, mnt, '--password-stdin'], OUTER);
    const busy = await vault(['create', '--hidden', '8M', exfat, '--password-stdin', ...cost], {
      stdin: OUTER + HIDDEN,
    });
    expect(busy.code).toBe(5);
    expect(busy.stderr).toMatch(/mounted/);
    await vaultOk(['dismount', mnt]);
    expect(leftovers(dir)).toEqual([]);
  });
});
