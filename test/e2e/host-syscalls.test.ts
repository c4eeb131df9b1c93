// The loop attach and mount(2) that `vault mount` makes itself (native/host.c through
// src/host/syscalls.ts), as root, on plain files: the device they give is the one losetup would give
// (backing file, read-only, direct I/O), and a mount carries exactly the flags of its option list.
// When they fail, vault runs losetup and mount(8) instead (src/host/loop.ts, mounts.ts), so these
// tests are what notices that the fast path stopped working.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { detachLoop, loopBackingFile, loopDirectIo } from '../../src/host/loop.js';
import { mountTable } from '../../src/host/mounts.js';
import { attachLoopDirect, mountDirect } from '../../src/host/syscalls.js';
import { lacks, makeTempDir, removeTempDirs, sh } from './helpers.js';

const attached: string[] = [];
const mounted: string[] = [];

afterEach(async () => {
  for (const mountpoint of mounted.splice(0)) await sh('umount', [mountpoint]);
  for (const device of attached.splice(0)) await detachLoop(device);
});
afterAll(removeTempDirs);

function readOnlyFlag(device: string): string {
  return readFileSync(`/sys/block/${device.replace('/dev/', '')}/ro`, 'utf8').trim();
}

async function plainFile(name: string, size = '64M'): Promise<string> {
  const file = join(await makeTempDir('vault-syscalls-'), name);
  await sh('truncate', ['-s', size, file]);
  return file;
}

describe.skipIf(lacks('root'))('loop devices and mounts without losetup and mount(8)', () => {
  it('attaches as losetup --find --show --direct-io=on [--read-only] does', async () => {
    const file = await plainFile('plain.img');
    for (const readOnly of [false, true]) {
      const ours = await attachLoopDirect(file, { readOnly, directIo: true });
      expect(ours).toMatch(/^\/dev\/loop\d+$/);
      if (!ours) return;
      attached.push(ours);
      const args = ['--find', '--show', '--direct-io=on', ...(readOnly ? ['--read-only'] : []), file];
      const theirs = (await sh('losetup', args)).stdout.trim();
      attached.push(theirs);
      expect(loopBackingFile(ours)).toBe(file);
      expect(loopBackingFile(theirs)).toBe(file);
      expect(readOnlyFlag(ours)).toBe(readOnly ? '1' : '0');
      expect(readOnlyFlag(theirs)).toBe(readOnly ? '1' : '0');
      expect(loopDirectIo(ours)).toBe(loopDirectIo(theirs));
      for (const device of attached.splice(0)) await detachLoop(device);
    }
  });

  it('two attaches at once get two devices', async () => {
    const file = await plainFile('twice.img');
    const devices = await Promise.all([
      attachLoopDirect(file, { readOnly: true, directIo: false }),
      attachLoopDirect(file, { readOnly: true, directIo: false }),
    ]);
    for (const device of devices) if (device) attached.push(device);
    expect(devices.every((device) => device !== null)).toBe(true);
    expect(new Set(devices).size).toBe(2);
  });

  it('a file that cannot be opened gives null, and no device', async () => {
    const before = readFileSync('/proc/partitions', 'utf8');
    expect(await attachLoopDirect('/nonexistent/vault.img', { readOnly: false, directIo: true })).toBeNull();
    expect(readFileSync('/proc/partitions', 'utf8')).toBe(before);
  });

  it('mounts with the flags and data of the option list, and refuses a bad option', async () => {
    const file = await plainFile('ext4.img');
    await sh('mkfs.ext4', ['-q', '-F', file]);
    const device = await attachLoopDirect(file, { readOnly: false, directIo: false });
    expect(device).not.toBeNull();
    if (!device) return;
    attached.push(device);
    const mountpoint = await makeTempDir('vault-syscalls-mnt-');

    expect(await mountDirect(device, mountpoint, 'ext4', 'rw,bogus_option,nosuid,nodev')).toBe(false);
    expect(mountTable().some((entry) => entry.mountpoint === mountpoint)).toBe(false);

    expect(await mountDirect(device, mountpoint, 'ext4', 'rw,noatime,commit=17,nosuid,nodev')).toBe(true);
    mounted.push(mountpoint);
    const entry = mountTable().find((line) => line.mountpoint === mountpoint);
    expect(entry?.source).toBe(device);
    expect(entry?.fstype).toBe('ext4');
    const options = entry?.options.split(',') ?? [];
    expect(options).toEqual(expect.arrayContaining(['rw', 'nosuid', 'nodev', 'noatime']));
    const superOptions = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .find((line) => line.split(' ')[4] === mountpoint);
    expect(superOptions).toContain('commit=17');
    await sh('umount', [mounted.pop() as string]);

    expect(await mountDirect(device, mountpoint, 'ext4', 'ro,noload,nosuid,nodev')).toBe(true);
    mounted.push(mountpoint);
    const readOnly = mountTable().find((line) => line.mountpoint === mountpoint);
    expect(readOnly?.options.split(',')).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev']));
  });
});
