// Loop devices: attaching, partitions, detaching, and what /sys says about them; block device sizes.
import { readdirSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { VaultError } from './errors.js';
import { statOrNull } from './paths.js';
import { findTool, firstLine, run } from './process.js';
import { attachLoopDirect } from './syscalls.js';

/** The file a loop device is attached to, or null when it is free or gone. */
export function loopBackingFile(loopDevice: string): string | null {
  const name = loopDevice.replace(/^\/dev\//, '');
  try {
    return readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Loop devices attached to `file` (path as the kernel reports it). */
export function loopsOfFile(file: string): string[] {
  const found: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync('/sys/block').filter((name) => name.startsWith('loop'));
  } catch {
    return found;
  }
  for (const name of names) {
    const backing = loopBackingFile(name);
    if (backing === file || backing === `${file} (deleted)`) found.push(`/dev/${name}`);
  }
  return found;
}

/** Whether the loop device uses direct I/O on its backing file (kernel view). */
export function loopDirectIo(loopDevice: string): boolean {
  const name = loopDevice.replace(/^\/dev\//, '');
  try {
    return readFileSync(`/sys/block/${name}/loop/dio`, 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

/**
 * Attaches a loop device to `file`; returns its path (/dev/loopN). When the kernel refuses direct I/O,
 * losetup has attached the device all the same (and exits 1): it then works with buffered I/O.
 */
export async function attachLoop(
  file: string,
  options: { readOnly: boolean; directIo: boolean; partScan?: boolean },
): Promise<string> {
  // The ioctls themselves when the addon is there (a few ms instead of starting losetup); losetup
  // otherwise, and after any refusal, so that its message is the one reported.
  const direct = await attachLoopDirect(file, options);
  if (direct && loopBackingFile(direct) === file) return direct;
  if (direct) await detachLoop(direct);
  const args = ['--find', '--show'];
  if (options.readOnly) args.push('--read-only');
  if (options.partScan) args.push('--partscan');
  if (options.directIo) args.push('--direct-io=on');
  args.push(file);
  const result = await run('losetup', args);
  const loopDevice = result.stdout.trim().split('\n')[0]?.trim() ?? '';
  if (/^\/dev\/loop\d+$/.test(loopDevice) && loopBackingFile(loopDevice) === file) return loopDevice;
  throw new VaultError(
    'IO',
    `attaching a loop device failed: ${firstLine(result.stderr) || `losetup exited ${result.code}`}`,
    'check that loop devices are available (modprobe loop; losetup -f)',
  );
}

/**
 * Queue limits of a loop device (best effort; false when /sys refused one): `maxSectorsKb` is the
 * largest request it sends down, `readAheadKb` how far the filesystem above reads ahead.
 */
export async function tuneLoopQueue(
  loopDevice: string,
  limits: { maxSectorsKb: number; readAheadKb: number },
): Promise<boolean> {
  const queue = `/sys/block/${loopDevice.replace(/^\/dev\//, '')}/queue`;
  const set = (name: string, value: number) =>
    writeFile(`${queue}/${name}`, `${value}\n`).then(
      () => true,
      () => false,
    );
  const [sectors, readAhead] = await Promise.all([
    set('max_sectors_kb', limits.maxSectorsKb),
    set('read_ahead_kb', limits.readAheadKb),
  ]);
  return sectors && readAhead;
}

/**
 * The partition numbers the kernel found on a loop device attached with --partscan (from /sys), waiting
 * briefly until /dev/loopNpM exists for each (devtmpfs creates the nodes just after the scan).
 */
export async function loopPartitions(loopDevice: string): Promise<number[]> {
  const name = loopDevice.replace(/^\/dev\//, '');
  const found = (): number[] => {
    try {
      return readdirSync(`/sys/block/${name}`)
        .map((entry) => new RegExp(`^${name}p(\\d+)$`).exec(entry)?.[1])
        .filter((number): number is string => number !== undefined)
        .map(Number)
        .sort((a, b) => a - b);
    } catch {
      return [];
    }
  };
  // Some kernels (seen on 6.18 in a microVM) attach with partscan set but add no partitions; partx
  // reads the table and adds them (BLKPG). They go away with the loop device all the same.
  if (found().length === 0 && findTool('partx')) await run('partx', ['--add', loopDevice]);
  for (let attempt = 0; attempt < 40; attempt++) {
    const numbers = found();
    if (numbers.every((number) => statOrNull(`${loopDevice}p${number}`)?.isBlockDevice())) return numbers;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return found();
}

export async function detachLoop(loopDevice: string): Promise<boolean> {
  const result = await run('losetup', ['--detach', loopDevice]);
  return result.code === 0 || loopBackingFile(loopDevice) === null;
}

/**
 * fstat reports 0 bytes for a block device. The kernel publishes its size in 512-byte units under
 * /sys/dev/block/<major>:<minor>/size; `blockdev --getsize64` is the fallback.
 */
export async function blockDeviceSize(path: string, rdev: number): Promise<number> {
  const major = (rdev >>> 8) & 0xfff;
  const minor = (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
  try {
    const sectors = Number((await readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8')).trim());
    if (Number.isSafeInteger(sectors) && sectors > 0) return sectors * 512;
  } catch {}
  try {
    const result = await run('blockdev', ['--getsize64', path]);
    const bytes = Number(result.stdout.trim());
    if (result.code === 0 && Number.isSafeInteger(bytes)) return bytes;
  } catch {}
  throw new VaultError(
    'IO',
    `cannot find the size of the block device ${path}`,
    'run as root, or copy the device to an image file with dd first',
  );
}
