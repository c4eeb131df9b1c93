// The filesystem registry (src/host/filesystems.ts) as a user meets it: `vault create --filesystem X`,
// mount, write, dismount, remount read-only, for the filesystems added through it (xfs and btrfs by the
// kernel, NTFS by ntfs-3g). Each mount is nosuid,nodev and the owner's; a read-only mount writes not
// one byte of the vault; a filesystem this machine could not mount is refused before anything is written.
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAST_COST, lacks, leftovers, mounts, useTempDir, vault, vaultOk } from './helpers.js';

const PASSWORD = 'filesystems of the registry\n';
const NOBODY = 65534;
let dir: string;

useTempDir('vault-e2e-fs-', (made) => {
  dir = made;
});

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

function mountOf(mountpoint: string) {
  const entry = mounts().find((line) => line.mountpoint === mountpoint);
  expect(entry, `${mountpoint} is mounted`).toBeDefined();
  return entry!;
}

describe.skipIf(lacks('mount'))('filesystems of the registry: create, mount, remount read-only', () => {
  // [name, vault size, fstype in the mount table, whose files are the owner's by mount options]
  const rows: Array<[string, string, RegExp, 'on disk' | 'by options']> = [
    ['xfs', '400M', /^xfs$/, 'on disk'],
    ['btrfs', '256M', /^btrfs$/, 'on disk'],
    ['ntfs', '64M', /^(ntfs3|fuseblk)$/, 'by options'],
  ];

  for (const [name, size, fstype, ownership] of rows) {
    it(`${name}: made by create, mounted nosuid,nodev and the owner's, written, remounted read-only unchanged`, async () => {
      const file = join(dir, `${name}.vol`);
      const mnt = join(dir, `${name}-mnt`);
      await mkdir(mnt);
      const created = await vaultOk(
        [
          'create',
          size,
          file,
          '--filesystem',
          name,
          '--owner',
          'nobody',
          '--quick',
          '--password-stdin',
          '--cost',
          FAST_COST,
        ],
        PASSWORD,
      );
      expect(created.stdout).toContain(`${name}.`);

      await vaultOk(['mount', file, mnt, '--owner', 'nobody', '--password-stdin'], PASSWORD);
      const rw = mountOf(mnt);
      expect(rw.fstype).toMatch(fstype);
      expect(rw.options.split(',')).toEqual(expect.arrayContaining(['rw', 'nosuid', 'nodev']));
      const root = statSync(mnt);
      expect(root.uid, `the root of the ${name} volume belongs to the owner (${ownership})`).toBe(NOBODY);
      expect(root.mode & 0o077, 'nobody else can enter it').toBe(0);
      writeFileSync(join(mnt, 'kept.txt'), `written into ${name}\n`);
      await vaultOk(['dismount', mnt]);

      const before = sha256(file);
      await vaultOk(['mount', file, mnt, '--read-only', '--password-stdin'], PASSWORD);
      expect(mountOf(mnt).options.split(',')).toContain('ro');
      expect(readFileSync(join(mnt, 'kept.txt'), 'utf8')).toBe(`written into ${name}\n`);
      await vaultOk(['dismount', mnt]);
      expect(sha256(file), 'a read-only mount writes nothing').toBe(before);
      expect(leftovers(dir)).toEqual([]);
    });
  }

  it('a size below what the filesystem accepts is refused before anything is written', async () => {
    const file = join(dir, 'small-xfs.vol');
    const refused = await vault(['create', '64M', file, '--filesystem', 'xfs', '--password-stdin'], {
      stdin: PASSWORD,
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^vault: error: xfs needs a volume of at least 300 MiB$/m);
    expect(refused.stderr).toMatch(/^vault: hint: give a larger size, or choose another filesystem/m);
    expect(leftovers(dir)).toEqual([]);
    expect(() => statSync(file)).toThrow();
  });

  it('a filesystem create does not know is refused with the list of those it makes', async () => {
    const refused = await vault(['create', '64M', join(dir, 'x.vol'), '--filesystem', 'zfs'], {
      stdin: PASSWORD,
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /^vault: hint: choose one of: ext4, exfat, vfat, xfs, btrfs, ntfs, none$/m,
    );
  });
});
