// The FUSE block-file bridge on its own (in this process, real FUSE): withBridge as `vault create` uses
// it, the request sizes the kernel really sends (1 MiB: max_write/max_read/max_pages must take effect),
// several requests in flight under a loop device with direct I/O (async DIO), and read-only bridges
// refusing writes. Uses the bench-only passthrough device over a plain file.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlockDevice } from '../../src/container/block-device.js';
import { mountBridge, withBridge } from '../../src/fuse/bridge.js';
import { MAX_REQUEST } from '../../src/fuse/fuse3.js';
import { openPassthroughDevice } from '../../src/fuse/passthrough-device.js';
import {
  isMounted,
  lacks,
  makeTempDir,
  mounts,
  removeTempDirs,
  sh,
  stateIdOf,
  vaultOk,
  waitFor,
} from './helpers.js';

// Nothing synchronous may touch the bridge here (execFileSync, statSync on the block file...): this
// very event loop serves it, so a blocking call deadlocks the test process.
const run = promisify(execFile);

let dir = '';

describe.skipIf(lacks('mount'))('FUSE block-file bridge', () => {
  beforeAll(async () => {
    dir = await makeTempDir('vault-bridge-');
  });

  afterAll(async () => {
    await removeTempDirs();
  });

  it('withBridge exposes the device as `volume` for mkfs, then unmounts and removes its directory', async () => {
    const image = join(dir, 'format.img');
    writeFileSync(image, '');
    truncateSync(image, 64 << 20);
    const device = await openPassthroughDevice(image);
    let seen = '';
    await withBridge(device, async (blockFile) => {
      seen = blockFile;
      expect(blockFile).toMatch(/^\/run\/vault\/bridge-[^/]+\/volume$/);
      expect((await stat(blockFile)).size).toBe(64 << 20);
      expect((await stat(join(blockFile, '..'))).mode & 0o777).toBe(0o700);
      expect(isMounted(join(blockFile, '..'))).toBe(true);
      await run('mkfs.ext4', ['-q', '-F', '-E', 'nodiscard', blockFile]);
    });
    await device.close();
    expect(isMounted(join(seen, '..'))).toBe(false);
    expect(existsSync(join(seen, '..'))).toBe(false);
    const probe = await run('blkid', ['-p', '-o', 'value', '-s', 'TYPE', image]);
    expect(probe.stdout.trim()).toBe('ext4');
  });

  it('withBridge unmounts when fn throws, and passes the error on', async () => {
    const image = join(dir, 'throw.img');
    writeFileSync(image, Buffer.alloc(1 << 20));
    const device = await openPassthroughDevice(image);
    let seen = '';
    await expect(
      withBridge(device, async (blockFile) => {
        seen = blockFile;
        throw new Error('mkfs exploded');
      }),
    ).rejects.toThrow('mkfs exploded');
    await device.close();
    expect(seen).not.toBe('');
    expect(isMounted(join(seen, '..'))).toBe(false);
    expect(existsSync(join(seen, '..'))).toBe(false);
  });

  it('receives 1 MiB requests and writes through to the host file', async () => {
    const image = join(dir, 'sizes.img');
    writeFileSync(image, '');
    truncateSync(image, 32 << 20);
    const device = await openPassthroughDevice(image);
    const bridgeDir = join(dir, 'bridge');
    await run('mkdir', ['-m', '700', bridgeDir]);
    const bridge = await mountBridge(device, bridgeDir);
    try {
      const entry = mounts().find((mount) => mount.mountpoint === bridgeDir);
      expect(entry?.fstype).toBe('fuse.vault');
      const source = join(dir, 'pattern.bin');
      const pattern = Buffer.alloc(16 << 20);
      for (let i = 0; i < pattern.length; i += 4) pattern.writeUInt32LE(i, i);
      writeFileSync(source, pattern);
      await run('dd', [
        `if=${source}`,
        `of=${bridge.blockFile}`,
        'bs=1M',
        'conv=notrunc,fsync',
        'status=none',
      ]);
      await run('dd', [
        `if=${bridge.blockFile}`,
        'of=/dev/null',
        'bs=1M',
        'count=16',
        'iflag=direct',
        'status=none',
      ]);
      const commonest = (sizes: Map<number, number>) => [...sizes].sort((a, b) => b[1] - a[1])[0]?.[0];
      expect(commonest(bridge.requestSizes.write)).toBe(MAX_REQUEST);
      expect(commonest(bridge.requestSizes.read)).toBe(MAX_REQUEST);
      // Acknowledged writes are in the host file, byte for byte.
      expect(readFileSync(image).subarray(0, pattern.length).equals(pattern)).toBe(true);
    } finally {
      expect(await bridge.unmount()).toBe(true);
      await device.close();
    }
    expect(isMounted(bridgeDir)).toBe(false);
  });

  it('under a loop device with direct I/O it serves 1 MiB requests, many at once', async () => {
    const image = join(dir, 'loop.img');
    writeFileSync(image, '');
    truncateSync(image, 256 << 20);
    const device = await openPassthroughDevice(image);
    const bridgeDir = join(dir, 'bridge-loop');
    await run('mkdir', ['-m', '700', bridgeDir]);
    const bridge = await mountBridge(device, bridgeDir);
    let loop = '';
    try {
      loop = (await run('losetup', ['--find', '--show', '--direct-io=on', bridge.blockFile])).stdout.trim();
      expect(readFileSync(`/sys/block/${loop.slice('/dev/'.length)}/loop/dio`, 'utf8').trim()).toBe('1');
      const fio = (rw: string, bs: string, iodepth: number) =>
        run('fio', [
          '--name=bridge',
          `--filename=${loop}`,
          `--rw=${rw}`,
          `--bs=${bs}`,
          `--iodepth=${iodepth}`,
          '--ioengine=libaio',
          '--direct=1',
          '--size=128M',
          '--output-format=terse',
        ]);
      // How the kernel cuts a loop device's 1 MiB direct I/O into FUSE requests depends on the pages
      // behind it (whole 1 MiB requests, or two near 512 KiB): far above libfuse 2's 128 KiB either way.
      const mean = (sizes: Map<number, number>) => {
        let bytes = 0;
        let count = 0;
        for (const [size, times] of sizes) {
          bytes += size * times;
          count += times;
        }
        return { bytes, mean: count ? bytes / count : 0 };
      };
      await fio('write', '1M', 16);
      const writes = mean(bridge.requestSizes.write);
      expect(writes.bytes).toBeGreaterThanOrEqual(128 << 20);
      expect(writes.mean).toBeGreaterThanOrEqual(384 << 10);
      expect(Math.max(...bridge.requestSizes.write.keys())).toBeLessThanOrEqual(MAX_REQUEST);
      // The kernel hands over the loop device's queue at once, not one request at a time.
      expect(bridge.maxInFlight).toBeGreaterThanOrEqual(4);
      await fio('read', '1M', 16);
      const reads = mean(bridge.requestSizes.read);
      expect(reads.bytes).toBeGreaterThanOrEqual(128 << 20);
      expect(reads.mean).toBeGreaterThanOrEqual(384 << 10);
    } finally {
      if (loop) await run('losetup', ['-d', loop]);
      await bridge.idle();
      expect(await bridge.unmount()).toBe(true);
      await device.close();
    }
    expect(isMounted(bridgeDir)).toBe(false);
  });

  it('a device without raw access (a CBC-ESSIV LUKS volume) is served through JavaScript, byte for byte', async () => {
    // An in-memory BlockDevice: no rawAccess, so every request is a round trip to this event loop.
    const memory = Buffer.alloc(16 << 20);
    let flushes = 0;
    const device: BlockDevice = {
      size: memory.length,
      readOnly: false,
      async readAt(plain, offset) {
        plain.set(memory.subarray(offset, offset + plain.length));
      },
      async writeAt(plain, offset) {
        memory.set(plain, offset);
      },
      async flush() {
        flushes++;
      },
      async close() {},
    };
    const bridgeDir = join(dir, 'bridge-forward');
    await run('mkdir', ['-m', '700', bridgeDir]);
    const bridge = await mountBridge(device, bridgeDir);
    try {
      const source = join(dir, 'forward.bin');
      const pattern = Buffer.alloc(8 << 20);
      for (let i = 0; i < pattern.length; i += 4) pattern.writeUInt32LE(i * 7, i);
      writeFileSync(source, pattern);
      await run('dd', [
        `if=${source}`,
        `of=${bridge.blockFile}`,
        'bs=1M',
        'seek=3',
        'conv=notrunc,fsync',
        'status=none',
      ]);
      expect(memory.subarray(3 << 20, 11 << 20).equals(pattern)).toBe(true);
      expect(flushes).toBeGreaterThan(0);
      const { stdout } = await run('sh', [
        '-c',
        `dd if=${bridge.blockFile} bs=1M skip=3 count=8 iflag=direct status=none | cmp - ${source} && echo same`,
      ]);
      expect(stdout.trim()).toBe('same');
      expect(bridge.requestSizes.write.get(MAX_REQUEST)).toBe(8);
    } finally {
      expect(await bridge.unmount()).toBe(true);
    }
    expect(isMounted(bridgeDir)).toBe(false);
  });

  it('a read-only bridge refuses to open `volume` for writing', async () => {
    const image = join(dir, 'ro.img');
    writeFileSync(image, Buffer.alloc(1 << 20, 7));
    const device = await openPassthroughDevice(image, { readOnly: true });
    await withBridge(device, async (blockFile) => {
      await expect(open(blockFile, 'r+')).rejects.toThrow(/EROFS|EACCES/);
      const { stdout } = await run('od', ['-An', '-tx1', '-N4', blockFile]);
      expect(stdout.trim()).toBe('07 07 07 07');
    });
    await device.close();
  });
});

// The same through `vault mount`: what the daemon itself sees (its log's "requests served" line) for a
// cold sequential read through ext4 and the loop device the daemon set up and tuned.
describe.skipIf(lacks('mount'))('the mount daemon, under ext4 and its loop device', () => {
  let vaultDir = '';
  beforeAll(async () => {
    vaultDir = await makeTempDir('vault-bridge-daemon-');
  });

  afterAll(async () => {
    await removeTempDirs();
  });

  it('sets 1 MiB requests and a 16 MiB read-ahead on its loop device; a cold read arrives as whole 1 MiB requests, many at once', async () => {
    const file = join(vaultDir, 'seq.vol');
    const mountpoint = join(vaultDir, 'mnt');
    await run('mkdir', [mountpoint]);
    const password = 'sequential\n';
    await vaultOk(['create', '256M', file, '--quick', '--password-stdin'], password);
    await vaultOk(['mount', file, mountpoint, '--password-stdin'], password);
    await sh('dd', [
      'if=/dev/urandom',
      `of=${join(mountpoint, 'data.bin')}`,
      'bs=1M',
      'count=64',
      'conv=fsync',
    ]);
    await vaultOk(['dismount', mountpoint]);

    // A fresh mount: only this read is counted (plus ext4's own few small requests).
    await vaultOk(['mount', file, mountpoint, '--password-stdin'], password);
    let logLine = '';
    try {
      const loop = mounts().find((entry) => entry.mountpoint === mountpoint)?.source ?? '';
      expect(loop).toMatch(/^\/dev\/loop\d+$/);
      const queue = `/sys/block/${loop.slice('/dev/'.length)}/queue`;
      // Set by the daemon just after the mount, while `vault mount` returns (src/fuse/attachments.ts).
      const tuned = () =>
        readFileSync(`${queue}/max_sectors_kb`, 'utf8').trim() === String(MAX_REQUEST / 1024) &&
        readFileSync(`${queue}/read_ahead_kb`, 'utf8').trim() === '16384';
      await waitFor(tuned, 'the loop queue tuned to 1 MiB requests and a 16 MiB read-ahead', 2000);
      await sh('sync', []);
      writeFileSync('/proc/sys/vm/drop_caches', '3\n');
      const read = await sh('dd', [`if=${join(mountpoint, 'data.bin')}`, 'of=/dev/null', 'bs=1M']);
      expect(read.code, read.stderr).toBe(0);
      // The request buffers: left out of core dumps ("dd") and in huge pages ("hg"), so that a 1 MiB
      // O_DIRECT read is one contiguous request to the disk (native/fuse3.c secret_alloc).
      const state = JSON.parse(readFileSync(`/run/vault/${stateIdOf(file)}/state.json`, 'utf8'));
      const buffers = requestBuffers(readFileSync(`/proc/${state.pid}/smaps`, 'utf8'));
      expect(buffers.length).toBeGreaterThanOrEqual(16);
      const thp = readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
      if (!thp.includes('[never]')) {
        // The cold read went through at least one of them, backed by a huge page.
        expect(Math.max(...buffers.map((buffer) => buffer.hugeKb))).toBeGreaterThanOrEqual(2048);
      }
    } finally {
      await vaultOk(['dismount', mountpoint]);
      const log = readFileSync(`/run/vault/log/${stateIdOf(file)}.log`, 'utf8');
      logLine = [...log.matchAll(/requests served: (.*)$/gm)].at(-1)?.[1] ?? '';
    }
    // "read: 86 x 1024 KiB, 39 x 4 KiB, ...; write: ...; at most 16 at once"
    const readPart = /read: ([^;]*);/.exec(logLine)?.[1] ?? '';
    const sizes = new Map(
      [...readPart.matchAll(/(\d+) x (\d+) KiB/g)].map((match) => [Number(match[2]), Number(match[1])]),
    );
    const whole = sizes.get(MAX_REQUEST / 1024) ?? 0;
    // 64 MiB read: nearly all of it in 1 MiB requests, not 1 MiB + 256 KiB pairs (max_sectors_kb 1280).
    expect(whole, logLine).toBeGreaterThanOrEqual(48);
    expect(sizes.get(256) ?? 0, logLine).toBeLessThan(whole / 8);
    const inFlight = Number(/at most (\d+) at once/.exec(logLine)?.[1] ?? 0);
    expect(inFlight, logLine).toBeGreaterThanOrEqual(4);
  });
});

/** The daemon's mappings marked both MADV_DONTDUMP and MADV_HUGEPAGE, from /proc/<pid>/smaps. */
function requestBuffers(smaps: string): Array<{ start: number; hugeKb: number }> {
  const found: Array<{ start: number; hugeKb: number }> = [];
  for (const block of smaps.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    const flags = /^VmFlags:(.*)$/m.exec(block)?.[1]?.trim().split(/\s+/) ?? [];
    if (!flags.includes('dd') || !flags.includes('hg')) continue;
    const start = Number.parseInt(block.slice(0, block.indexOf('-')), 16);
    // Aligned to 2 MiB, as a huge page needs.
    expect(start % (2 << 20)).toBe(0);
    found.push({ start, hugeKb: Number(/^AnonHugePages:\s+(\d+) kB/m.exec(block)?.[1] ?? 0) });
  }
  return found;
}
