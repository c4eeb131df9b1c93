// vault mount --partition N: a vault whose cleartext volume holds a partition table (an MBR with two
// ext4 partitions) mounts partition 2 and shows its files; a partition that is not there is refused
// with exit 2, naming the ones there are, and nothing is left behind.
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  forceCleanup,
  lacks,
  leftovers,
  makeTempDir,
  removeTempDirs,
  sh,
  vault,
  vaultOk,
} from './helpers.js';

const PASSWORD = 'partitioned image';
const secret = ['--password-stdin', '--non-interactive'];
let dir = '';

async function shOk(command: string, args: string[]): Promise<string> {
  const result = await sh(command, args);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

/**
 * Writes an MBR (DOS) partition table with two Linux partitions onto `blockFile`: 24 MiB from 1 MiB,
 * then the rest. Written by hand (16 bytes an entry) so the test needs no sfdisk (Debian fdisk).
 */
function writeTwoPartitionMbr(blockFile: string): void {
  const sectors = Math.floor(statSync(blockFile).size / 512);
  const entries: Array<[number, number]> = [
    [2048, 49152],
    [51200, sectors - 51200],
  ];
  const mbr = Buffer.alloc(512);
  entries.forEach(([first, count], index) => {
    const at = 446 + 16 * index;
    mbr.set([0x00, 0xfe, 0xff, 0xff, 0x83, 0xfe, 0xff, 0xff], at); // not bootable, CHS unused, type 83 Linux
    mbr.writeUInt32LE(first, at + 8);
    mbr.writeUInt32LE(count, at + 12);
  });
  mbr.writeUInt32LE(0x5eed_0001, 440); // disk signature
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  const fd = openSync(blockFile, 'r+');
  try {
    writeSync(fd, mbr, 0, 512, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(lacks('mount'))('vault mount --partition', () => {
  beforeAll(async () => {
    dir = await makeTempDir('vault-partition-');
  });
  afterEach(async () => {
    const cleaned = await forceCleanup(dir);
    expect(cleaned).toEqual([]);
  });
  afterAll(async () => {
    await removeTempDirs();
  });

  it('mounts partition 2 of a partitioned vault and refuses partition 3', async () => {
    const file = join(dir, 'disk.vol');
    await vaultOk(['create', '64M', file, '--filesystem', 'none', ...secret], `${PASSWORD}\n`);
    const blockFile = (
      await vaultOk(['mount', file, '--no-filesystem', ...secret], `${PASSWORD}\n`)
    ).stdout.trim();
    // Two partitions: an MBR written onto the cleartext block file, each formatted through a partscan loop.
    writeTwoPartitionMbr(blockFile);
    const loop = (await shOk('losetup', ['--find', '--show', '--partscan', blockFile])).trim();
    try {
      // Some kernels leave the partitions to partx (it fails harmlessly when they are there already).
      if (!existsSync(`${loop}p1`)) await sh('partx', ['--add', loop]);
      const partitionDir = join(dir, 'p');
      for (const number of [1, 2]) {
        await shOk('mkfs.ext4', ['-q', '-F', '-L', `part${number}`, `${loop}p${number}`]);
        await shOk('mkdir', ['-p', partitionDir]);
        await shOk('mount', [`${loop}p${number}`, partitionDir]);
        writeFileSync(join(partitionDir, 'which.txt'), `partition ${number}\n`);
        await shOk('umount', [partitionDir]);
      }
      await shOk('rmdir', [partitionDir]);
    } finally {
      await sh('losetup', ['--detach', loop]);
    }
    await vaultOk(['dismount', file]);

    const mountpoint = join(dir, 'mnt');
    await shOk('mkdir', [mountpoint]);
    const mounted = await vaultOk(
      ['mount', file, mountpoint, '--partition', '2', ...secret],
      `${PASSWORD}\n`,
    );
    expect(mounted.stdout.trim()).toBe(mountpoint);
    expect(readFileSync(join(mountpoint, 'which.txt'), 'utf8')).toBe('partition 2\n');
    writeFileSync(join(mountpoint, 'new.txt'), 'written through --partition\n');
    const listed = JSON.parse((await vaultOk(['list', '--json'])).stdout) as Array<{
      file: string;
      state: string;
    }>;
    expect(listed.find((entry) => entry.file === file)?.state).toBe('ok');
    await vaultOk(['dismount', mountpoint]);
    expect(leftovers(dir)).toEqual([]);

    // Partition 3 does not exist: exit 2, the partitions there are named, nothing left behind.
    const refused = await vault(['mount', file, mountpoint, '--partition', '3', ...secret, '--cost', '1'], {
      stdin: `${PASSWORD}\n`,
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/no partition 3; its partitions are 1, 2/);
    expect(refused.stderr).toMatch(/vault: hint: /);
    expect(leftovers(dir)).toEqual([]);
    expect(existsSync(join(mountpoint, 'which.txt'))).toBe(false);

    // Partition 1 still holds its own file, and partition 2 kept what was written.
    await vaultOk(['mount', file, mountpoint, '--partition', '1', ...secret], `${PASSWORD}\n`);
    expect(readFileSync(join(mountpoint, 'which.txt'), 'utf8')).toBe('partition 1\n');
    await vaultOk(['dismount', file]);
    await vaultOk(['mount', file, mountpoint, '--partition', '2', '--read-only', ...secret], `${PASSWORD}\n`);
    expect(readFileSync(join(mountpoint, 'new.txt'), 'utf8')).toBe('written through --partition\n');
    await vaultOk(['dismount', file]);
    expect(leftovers(dir)).toEqual([]);
  });

  it('refuses --partition on a vault without a partition table', async () => {
    const file = join(dir, 'plain.vol');
    await vaultOk(['create', '32M', file, ...secret], `${PASSWORD}\n`);
    const refused = await vault(['mount', file, '--partition', '1', ...secret, '--cost', '1'], {
      stdin: `${PASSWORD}\n`,
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/holds no partition table/);
    expect(leftovers(dir, ['/media/vault/plain'])).toEqual([]);
  });
});
