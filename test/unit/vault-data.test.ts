// Vault's data path beyond the edges api-edges covers (src/container/vault.ts): flush and close sync
// exactly when the vault is writable, timestamps come back with preserveTimestamps, writes in flight at
// the same time each keep their own bytes (the shared ciphertext scratch buffer is never handed out
// twice), partial sectors keep their neighbours, and what rawAccess and info() tell the daemon and the CLI.
import { mkdtemp, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openContainerFile } from '../../src/container/file.js';
import {
  type ContainerFile,
  createVault,
  openVault,
  Secret,
  VAULT_WARNINGS,
} from '../../src/container/index.js';
import { DATA_OFFSET, SECTOR_BYTES, SLOT_COUNT } from '../../src/container/layout.js';
import { isHiddenProtectionFailure } from '../../src/container/vault.js';
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

  it('a write still waiting behind an overlapping one when close() is called lands, it does not fail', async () => {
    const vault = await openVault(path, await secret(), { costLevel });
    const writes = [vault.writeAt(Buffer.alloc(10, 5), 4090), vault.writeAt(Buffer.alloc(10, 6), 4095)];
    await vault.close();
    await Promise.all(writes);
    const again = await openVault(path, await secret(), { costLevel, readOnly: true });
    const back = Buffer.alloc(15);
    await again.readAt(back, 4090);
    await again.close();
    expect(back).toEqual(Buffer.concat([Buffer.alloc(5, 5), Buffer.alloc(10, 6)]));
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

describe('close, warnings and protection', () => {
  it('close wipes the master and header keys and closes the file', async () => {
    const vault = await openVault(path, await secret(), { costLevel });
    const { masterKey, headerKey } = vault.state;
    expect(masterKey.some((byte) => byte !== 0)).toBe(true);
    await vault.close();
    expect(masterKey.every((byte) => byte === 0)).toBe(true);
    expect(headerKey.every((byte) => byte === 0)).toBe(true);
    expect(vault.file.fd).toBe(-1);
    await expect(vault.readAt(Buffer.alloc(1), 0)).rejects.toMatchObject({
      code: 'IO',
      message: 'the vault is closed',
      hint: 'open it again',
    });
  });

  it('identity, the read-only refusal, and the implementation it was opened with', async () => {
    const vault = await openVault(path, await secret(), { costLevel, readOnly: true });
    const info = await stat(path);
    expect(vault.identity).toEqual({ dev: info.dev, ino: info.ino });
    await expect(vault.writeAt(Buffer.alloc(1), 0)).rejects.toMatchObject({
      code: 'IO',
      message: 'the vault is open read-only',
      hint: 'open it read-write',
      reason: 'read-only',
    });
    const opened = vault.info().xtsImplementation;
    const saved = process.env.VAULT_XTS;
    process.env.VAULT_XTS = opened === 'node-crypto' ? 'openssl-addon' : 'node-crypto';
    try {
      expect(vault.info().xtsImplementation).toBe(opened);
    } finally {
      if (saved === undefined) delete process.env.VAULT_XTS;
      else process.env.VAULT_XTS = saved;
    }
    await vault.close();
  });

  it('a damaged primary: opened from the backup, with the warning', async () => {
    const damaged = join(dir, 'damaged.vol');
    await createVault(damaged, { fileSize: FILE_SIZE, secret: await secret(), costLevel, quick: true });
    const file = await openContainerFile(damaged, 'write');
    await file.write(Buffer.alloc(SECTOR_BYTES, 0xab), 0);
    await file.close();
    const vault = await openVault(damaged, await secret(), { costLevel, readOnly: true });
    expect(vault.info().headers.authoritative).toBe('backup');
    expect(vault.warnings).toEqual([VAULT_WARNINGS.primaryDamaged]);
    await vault.close();
  });

  it('rawAccess without a descriptor is an internal error', async () => {
    const openFile = async (at: string, mode: 'read' | 'write' | 'create'): Promise<ContainerFile> => {
      const file = await openContainerFile(at, mode);
      return new Proxy(file, {
        get(target, name, receiver) {
          if (name === 'fd') return undefined;
          const value = Reflect.get(target, name, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    };
    const vault = await openVault(path, await secret(), { costLevel, openFile });
    expect(() => vault.rawAccess()).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    await vault.close();
  });
});

describe('protecting a hidden volume', () => {
  const outer = () => Secret.fromInputs({ password: Buffer.from('outer', 'utf8') });
  const hiddenSecret = () => Secret.fromInputs({ password: Buffer.from('hidden', 'utf8') });
  let withHidden: string;
  beforeAll(async () => {
    withHidden = join(dir, 'with-hidden.vol');
    await createVault(withHidden, {
      fileSize: FILE_SIZE,
      secret: await outer(),
      costLevel,
      hidden: { dataSize: 2 ** 20, secret: await hiddenSecret() },
    });
  });

  it('the daemon is told the hidden range, then everything once a write tripped it', async () => {
    const vault = await openVault(withHidden, await outer(), {
      costLevel,
      protectHidden: await hiddenSecret(),
    });
    const range = vault.rawAccess().protectedRange;
    expect(range).toEqual({ start: vault.size - 2 ** 20, end: vault.size });
    await expect(vault.writeAt(Buffer.alloc(1), vault.size - 1)).rejects.toMatchObject({ code: 'IO' });
    expect(vault.rawAccess().protectedRange).toEqual({ start: 0, end: vault.size });
    await vault.close();
  });

  it('a wrong hidden secret, or the hidden secret first, is refused and says which', async () => {
    const wrong = await openVault(withHidden, await outer(), {
      costLevel,
      protectHidden: await Secret.fromInputs({ password: Buffer.from('nope', 'utf8') }),
    }).catch((e: unknown) => e);
    expect(wrong).toMatchObject({ code: 'CANNOT_UNLOCK', reason: 'protect-hidden-unlock' });
    expect(isHiddenProtectionFailure(wrong)).toBe(true);
    expect(isHiddenProtectionFailure(new Error('x'))).toBe(false);
    const reversed = await openVault(withHidden, await hiddenSecret(), {
      costLevel,
      protectHidden: await outer(),
    }).catch((e: unknown) => e);
    expect(reversed).toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/opens a hidden volume/),
    });
    expect(isHiddenProtectionFailure(reversed)).toBe(false);
  });
});
