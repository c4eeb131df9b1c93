// Power cuts under the mounted write path, as far as it runs in JavaScript: a vault whose container file
// is the power-cut model (test/unit/power-cut.ts), served by the real FUSE bridge through its
// forward path (a device without raw access: each request a round trip to this event loop, flush and
// fsync become device.flush). dd writes random ranges of `volume` with conv=fsync; once dd has returned
// (its fsync acknowledged) every byte it wrote must be in the image after any cut, even one that keeps
// no unsynced write at all. The addon's own data path (pwrite + fdatasync in native/fuse3.c, used for
// vaults on a real file) is not reachable from here: the kill -9 test covers what it can. Also a
// model-based test of the same path: random unaligned reads and writes against an in-memory model (the
// JS read-ahead the old bridge had is gone; the kernel's page cache is what could serve stale bytes).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlockDevice } from '../../src/container/block-device.js';
import { createVault, openVault, Secret } from '../../src/container/index.js';
import { SECTOR_BYTES } from '../../src/container/layout.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';
import { mountBridge } from '../../src/fuse/bridge.js';
import { PowerCutDisk, prng, testSeed } from '../unit/power-cut.js';
import { isMounted, lacks } from './helpers.js';

// Nothing synchronous may touch the bridge: this event loop serves it.
const run = promisify(execFile);
const costLevel = MIN_COST_LEVEL;
const SOAK = process.env.VAULT_SOAK === '1';
const secret = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });

let dir = '';

describe.skipIf(lacks('mount'))('power cuts under the FUSE bridge (forward path)', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vault-power-cut-bridge-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('after dd conv=fsync returned, its bytes survive any power cut', async () => {
    const seed = testSeed('power-cut bridge');
    const random = prng(seed);
    const path = join(dir, 'base.vol');
    await createVault(path, { fileSize: 4 << 20, secret: await secret('pw'), costLevel });
    const disk = new PowerCutDisk(await readFile(path));
    const vault = await openVault(path, await secret('pw'), { costLevel, openFile: disk.opener() });
    // Without rawAccess the bridge forwards every request to these methods.
    const device: BlockDevice = {
      size: vault.size,
      readOnly: false,
      readAt: (plain, offset) => vault.readAt(plain, offset),
      writeAt: (plain, offset) => vault.writeAt(plain, offset),
      flush: () => vault.flush(),
      close: () => vault.close(),
    };
    const model = Buffer.alloc(vault.size);
    await vault.readAt(model, 0);
    const bridgeDir = join(dir, 'bridge');
    await run('mkdir', ['-m', '700', bridgeDir]);
    const bridge = await mountBridge(device, bridgeDir);
    try {
      const sectors = vault.size / SECTOR_BYTES;
      const rounds = SOAK ? 60 : 6;
      for (let round = 0; round < rounds; round++) {
        const count = 1 + Math.floor(random() * 64);
        const first = Math.floor(random() * (sectors - count));
        const data = Buffer.alloc(count * SECTOR_BYTES);
        for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(Math.floor(random() * 2 ** 32), i);
        const source = join(dir, `round-${round}.bin`);
        await writeFile(source, data);
        await run('dd', [
          `if=${source}`,
          `of=${bridge.blockFile}`,
          `bs=${SECTOR_BYTES}`,
          `seek=${first}`,
          'conv=notrunc,fsync',
          'status=none',
        ]);
        data.copy(model, first * SECTOR_BYTES);
        // dd returned: everything so far was acknowledged. No cut may lose any of it.
        for (const keep of [0, random()]) {
          const image = disk.afterCut(random, keep);
          const opened = await openVault('cut.vol', await secret('pw'), {
            costLevel,
            readOnly: true,
            openFile: PowerCutDisk.reader(image),
          });
          const seen = Buffer.alloc(opened.size);
          await opened.readAt(seen, 0);
          await opened.close();
          expect(seen.equals(model), `round ${round}, keep ${keep.toFixed(2)} (seed ${seed})`).toBe(true);
        }
      }
    } finally {
      await bridge.idle();
      expect(await bridge.unmount()).toBe(true);
      await vault.close();
    }
    expect(isMounted(bridgeDir)).toBe(false);
  });

  it('model-based: random unaligned reads and writes through the block file match an in-memory model', async () => {
    // Writes straddle 512-byte, 4 KiB and 128 KiB boundaries at both ends; reads go through the page
    // cache or around it (O_DIRECT, aligned), so stale data from either path would show.
    const seed = testSeed('bridge model');
    const random = prng(seed);
    const size = 8 << 20;
    const memory = Buffer.alloc(size);
    const device: BlockDevice = {
      size,
      readOnly: false,
      async readAt(plain, offset) {
        plain.set(memory.subarray(offset, offset + plain.length));
      },
      async writeAt(plain, offset) {
        memory.set(plain, offset);
      },
      async flush() {},
      async close() {},
    };
    const model = Buffer.alloc(size);
    const bridgeDir = join(dir, 'bridge-model');
    await run('mkdir', ['-m', '700', bridgeDir]);
    const bridge = await mountBridge(device, bridgeDir);
    const boundary = () => {
      const unit = [512, SECTOR_BYTES, 128 << 10][Math.floor(random() * 3)] as number;
      return unit * (1 + Math.floor(random() * (size / unit - 2)));
    };
    try {
      for (let op = 0; op < (SOAK ? 400 : 60); op++) {
        const what = `op ${op} (seed ${seed})`;
        if (random() < 0.5) {
          // A write across a boundary: it starts before it and ends after it.
          const edge = boundary();
          const before = 1 + Math.floor(random() * 5000);
          const after = 1 + Math.floor(random() * 5000);
          const offset = Math.max(0, edge - before);
          const data = Buffer.alloc(Math.min(size - offset, edge + after - offset));
          for (let i = 0; i < data.length; i++) data[i] = Math.floor(random() * 256);
          const source = join(dir, 'write.bin');
          await writeFile(source, data);
          await run('dd', [
            `if=${source}`,
            `of=${bridge.blockFile}`,
            `bs=${data.length}`,
            `seek=${offset}`,
            'oflag=seek_bytes',
            'conv=notrunc,fsync',
            'status=none',
          ]);
          data.copy(model, offset);
          expect(memory.subarray(offset, offset + data.length).equals(data), what).toBe(true);
        } else {
          const direct = random() < 0.5;
          const offset = direct ? boundary() - SECTOR_BYTES : Math.floor(random() * (size - 20_000));
          const length = direct
            ? SECTOR_BYTES * (1 + Math.floor(random() * 4))
            : 1 + Math.floor(random() * 20_000);
          const target = join(dir, 'read.bin');
          await run('dd', [
            `if=${bridge.blockFile}`,
            `of=${target}`,
            `bs=${length}`,
            `skip=${offset}`,
            'count=1',
            direct ? 'iflag=skip_bytes,direct' : 'iflag=skip_bytes',
            'status=none',
          ]);
          const seen = await readFile(target);
          expect(
            seen.equals(model.subarray(offset, offset + length)),
            `${what}: read ${offset}+${length}`,
          ).toBe(true);
        }
      }
      expect(memory.equals(model)).toBe(true);
    } finally {
      await bridge.idle();
      expect(await bridge.unmount()).toBe(true);
    }
  });
});
