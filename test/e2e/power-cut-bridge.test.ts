// Power cuts under the mounted write path, as far as it runs in JavaScript: a vault whose container file
// is the power-cut model (test/unit/power-cut.ts), served by the real FUSE bridge through its
// forward path (a device without raw access: each request a round trip to this event loop, flush and
// fsync become device.flush). dd writes random ranges of `volume` with conv=fsync; once dd has returned
// (its fsync acknowledged) every byte it wrote must be in the image after any cut, even one that keeps
// no unsynced write at all. The addon's own data path (pwrite + fdatasync in native/fuse3.c, used for
// vaults on a real file) is not reachable from here: the kill -9 test covers what it can.
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
});
