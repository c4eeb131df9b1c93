// Vault's data path beyond the edges api-edges covers (src/container/vault.ts): flush and close sync
// exactly when the vault is writable, timestamps come back with preserveTimestamps, writes in flight at
// the same time each keep their own bytes (the shared ciphertext scratch buffer is never handed out
// twice), partial sectors keep their neighbours, and what rawAccess and info() tell the daemon and the CLI.
import { mkdtemp, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openContainerFile } from '../../src/container/file.js';
import { type ContainerFile, createVault, openVault, Secret } from '../../src/container/index.js';
import { DATA_OFFSET, SECTOR_BYTES, SLOT_COUNT } from '../../src/container/layout.js';
import { costParams, MIN_COST_LEVEL } from '../../src/crypto/kdf.js';
import { activeXtsImplementation } from '../../src/crypto/xts.js';

const costLevel = MIN_COST_LEVEL;
const FILE_SIZE = 4 * 2 ** 20;
let dir: string;
let path: string;
const secret = () => Secret.fromInputs({ password: Buffer.from('data path', 'utf8') });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-data-'));
  path = join(dir, 'data.vol');
  await createVault(path, { fileSize: FILE_SIZE, secret: await secret(), costLevel, quick: true });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** openContainerFile with a log of syncs, timestamp changes and writes (position, length). */
function logged() {
  const log: string[] = [];
  const openFile = async (at: string, mode: 'read' | 'write' | 'create'): Promise<ContainerFile> => {
    const file = await openContainerFile(at, mode);
    return new Proxy(file, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver);
        if (name === 'sync')
          return async () => {
            log.push('sync');
            return target.sync();
          };
        if (name === 'setTimes')
          return async (a: number, m: number) => {
            log.push('setTimes');
            return target.setTimes(a, m);
          };
        if (name === 'write')
          return async (buffer: Uint8Array, position: number) => {
            log.push(`write ${position} ${buffer.length}`);
            return target.write(buffer, position);
          };
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  };
  return { log, openFile };
}

describe('flush and close', () => {
  it('flush syncs a writable vault once; a read-only vault never syncs or writes', async () => {
    const writable = logged();
    const vault = await openVault(path, await secret(), { costLevel, openFile: writable.openFile });
    await vault.writeAt(Buffer.alloc(100, 1), 10);
    await vault.flush();
    expect(writable.log).toEqual([`write ${DATA_OFFSET} ${SECTOR_BYTES}`, 'sync']);
    await vault.close();
    expect(writable.log.at(-1)).toBe('sync');

    const readOnly = logged();
    const ro = await openVault(path, await secret(), {
      costLevel,
      readOnly: true,
      openFile: readOnly.openFile,
    });
    await ro.flush();
    await ro.close();
    expect(readOnly.log).toEqual([]);
  });

  it('close waits for writes in flight, then syncs; preserveTimestamps puts the times back', async () => {
    await utimes(path, new Date(1_000_000_000_000), new Date(1_000_000_000_000));
    const before = await stat(path);
    const { log, openFile } = logged();
    const vault = await openVault(path, await secret(), { costLevel, openFile, preserveTimestamps: true });
    const writes = [
      vault.writeAt(Buffer.alloc(SECTOR_BYTES, 2), 0),
      vault.writeAt(Buffer.alloc(10, 3), 5000),
    ];
    await vault.close();
    await Promise.all(writes);
    expect(log.filter((entry) => entry.startsWith('write'))).toHaveLength(2);
    expect(log.slice(-2)).toEqual(['sync', 'setTimes']);
    const after = await stat(path);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.atimeMs).toBe(before.atimeMs);

    // Without it the times are left as the writes made them.
    const plain = logged();
    const other = await openVault(path, await secret(), { costLevel, openFile: plain.openFile });
    await other.writeAt(Buffer.alloc(1, 4), 0);
    await other.close();
    expect(plain.log).not.toContain('setTimes');
    expect((await stat(path)).mtimeMs).not.toBe(before.mtimeMs);
    // A read-only vault with preserveTimestamps has nothing to put back.
    const ro = logged();
    const reader = await openVault(path, await secret(), {
      costLevel,
      readOnly: true,
      preserveTimestamps: true,
      openFile: ro.openFile,
    });
    await reader.close();
    expect(ro.log).toEqual([]);
  });
});

describe('writes at the same time', () => {
  it('each keeps its own bytes: whole sectors, partial sectors, in one sector or apart', async () => {
    const vault = await openVault(path, await secret(), { costLevel });
    const model = Buffer.alloc(64 * SECTOR_BYTES);
    await vault.readAt(model, 0);
    const writes: Array<[number, number, number]> = [];
    for (let i = 0; i < 24; i++) {
      // Whole sectors, sector-crossing partial writes and tiny writes sharing sectors.
      const offset = [i * SECTOR_BYTES * 2, i * 2500 + 17, 40 * SECTOR_BYTES + i * 7][i % 3] as number;
      const length = [SECTOR_BYTES * 2, 3000, 5][i % 3] as number;
      writes.push([offset, length, i + 1]);
    }
    await Promise.all(
      writes.map(([offset, length, fill]) => {
        const bytes = Buffer.alloc(length, fill);
        model.fill(fill, offset, offset + length);
        return vault.writeAt(bytes, offset);
      }),
    );
    const read = Buffer.alloc(model.length);
    await vault.readAt(read, 0);
    expect(read.equals(model)).toBe(true);
    await vault.close();
    const again = await openVault(path, await secret(), { costLevel });
    const reread = Buffer.alloc(model.length);
    await again.readAt(reread, 0);
    expect(reread.equals(model)).toBe(true);
    await again.close();
  });

  it('a write larger than the scratch buffer, and one beside it, both land', async () => {
    const vault = await openVault(path, await secret(), { costLevel });
    const big = Buffer.alloc(2 ** 20 + SECTOR_BYTES, 0x11);
    const small = Buffer.alloc(SECTOR_BYTES, 0x22);
    await Promise.all([
      vault.writeAt(big, 0),
      vault.writeAt(small, big.length),
      vault.writeAt(small, big.length + SECTOR_BYTES),
    ]);
    const read = Buffer.alloc(big.length + 2 * SECTOR_BYTES);
    await vault.readAt(read, 0);
    expect(read.subarray(0, big.length).every((byte) => byte === 0x11)).toBe(true);
    expect(read.subarray(big.length).every((byte) => byte === 0x22)).toBe(true);
    // The caller's buffers are never modified by a write.
    expect(big.every((byte) => byte === 0x11) && small.every((byte) => byte === 0x22)).toBe(true);
    await vault.close();
  });
});

describe('what the vault tells', () => {
  it('rawAccess: the descriptor, the data offset, the master key, the sector size, no protected range', async () => {
    const vault = await openVault(path, await secret(), { costLevel });
    const raw = vault.rawAccess();
    expect(raw.fd).toBe(vault.file.fd);
    expect(raw.dataOffset).toBe(DATA_OFFSET);
    expect(raw.sectorSize).toBe(SECTOR_BYTES);
    expect(raw.key).toBe(vault.state.masterKey);
    expect(raw.protectedRange).toBeNull();
    await vault.close();
    expect(() => vault.rawAccess()).toThrow(/closed/);
  });

  it('info: the layout, the cipher and KDF with the level it was opened with, keyslots and headers', async () => {
    const vault = await openVault(path, await secret(), { costLevel });
    expect(vault.info()).toEqual({
      path,
      formatVersion: 1,
      fileSize: FILE_SIZE,
      dataOffset: DATA_OFFSET,
      dataSize: vault.size,
      sectorSize: SECTOR_BYTES,
      cipher: 'aes-256-xts',
      xtsImplementation: activeXtsImplementation(),
      kdf: 'argon2id',
      costLevel,
      kdfMemoryKiB: costParams(costLevel).memoryKiB,
      kdfIterations: costParams(costLevel).iterations,
      kdfParallelism: costParams(costLevel).parallelism,
      kind: 'outer',
      keyslots: { total: SLOT_COUNT, used: [0], opened: 0 },
      headers: {
        authoritative: 'primary',
        primary: { state: 'ok', sequence: 1 },
        backup: { state: 'ok', sequence: 1 },
      },
      readOnly: false,
    });
    expect(vault.costLevel).toBe(costLevel);
    expect(vault.warnings).toEqual([]);
    expect(vault.protectionTripped).toBe(false);
    await vault.close();
    await vault.close(); // a second close does nothing
  });
});
