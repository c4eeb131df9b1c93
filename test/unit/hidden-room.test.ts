// addHiddenVolume (src/container/hidden.ts) at its edges: the largest hidden volume that fits is accepted
// and one sector more is refused with the exact sizes; no room at all, a room under 1 MiB; outer volumes
// it cannot measure; a never-written sector where the hidden volume would go; Ctrl-C before the write
// and a secret read by a prompt (wiped, however it ends). Every refusal leaves the file byte for byte.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  addHiddenVolume,
  createVault,
  hiddenRoom,
  isVaultError,
  openVault,
  Secret,
  type VaultError,
} from '../../src/container/index.js';
import { DATA_OFFSET, MIN_DATA_BYTES, OVERHEAD_BYTES } from '../../src/container/layout.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';
import { findTool } from '../../src/host/process.js';
import { refusal } from '../tools/refusal.js';

// Every sector cipher a Vault makes, and whether it was destroyed (its key copies wiped).
const ciphers = vi.hoisted(() => [] as Array<{ destroyed: boolean }>);
vi.mock('../../src/container/vault-suites.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/container/vault-suites.js')>();
  return {
    ...original,
    createVaultSectorCipher: (...args: Parameters<typeof original.createVaultSectorCipher>) => {
      const cipher = original.createVaultSectorCipher(...args);
      const record = { destroyed: false };
      ciphers.push(record);
      const destroy = cipher.destroy.bind(cipher);
      return Object.assign(Object.create(cipher), {
        encrypt: cipher.encrypt.bind(cipher),
        decrypt: cipher.decrypt.bind(cipher),
        destroy: () => {
          record.destroyed = true;
          destroy();
        },
      });
    },
  };
});

const costLevel = MIN_COST_LEVEL;
const MiB = 2 ** 20;
const FILE_SIZE = 16 * MiB;
const DATA_SIZE = FILE_SIZE - OVERHEAD_BYTES;
let dir: string;
const secret = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const haveMtools = findTool('mcopy') !== null;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-hidden-room-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  ciphers.length = 0;
});

/** A vault whose outer volume holds what `mkfs` (then `fill`) made of an image of its size. */
async function vaultHolding(
  name: string,
  mkfs: string[] | null,
  fill?: (image: string) => void,
): Promise<string> {
  let written = Buffer.alloc(0);
  if (mkfs) {
    const image = join(dir, `${name}.img`);
    await writeFile(image, '');
    await truncate(image, DATA_SIZE);
    execFileSync(mkfs[0] as string, [...mkfs.slice(1), image], { stdio: 'ignore' });
    fill?.(image);
    const bytes = await readFile(image);
    let end = bytes.length;
    while (end > 0 && bytes.subarray(end - 4096, end).every((byte) => byte === 0)) end -= 4096;
    written = bytes.subarray(0, end);
  }
  const path = join(dir, name);
  await createVault(path, {
    fileSize: FILE_SIZE,
    secret: await secret('outer password'),
    costLevel,
    format: (vault) => vault.writeAt(written, 0),
  });
  return path;
}

/** A FAT16 outer volume holding one file of `kib` KiB of random bytes (allocated from the front). */
const fatWithFile = (name: string, kib: number) =>
  vaultHolding(name, ['mkfs.vfat', '-F', '16'], (image) => {
    const payload = join(dir, `${name}.payload`);
    execFileSync('dd', ['if=/dev/urandom', `of=${payload}`, 'bs=1K', `count=${kib}`], { stdio: 'ignore' });
    execFileSync('mcopy', ['-i', image, payload, '::/decoy.bin']);
  });

async function add(
  path: string,
  dataSize: number,
  options: { signal?: AbortSignal; hiddenSecret?: Secret | (() => Promise<Secret>) } = {},
) {
  return addHiddenVolume(path, {
    outerSecret: await secret('outer password'),
    costLevel,
    ...(options.signal ? { signal: options.signal } : {}),
    hidden: { dataSize, secret: options.hiddenSecret ?? (await secret('hidden password')) },
  });
}

/** Refused with USAGE and `reason`, the file byte for byte as before; returns the error. */
async function refusedUnchanged(
  path: string,
  attempt: () => Promise<unknown>,
  reason: string,
): Promise<VaultError> {
  const before = sha256(await readFile(path));
  const error = await refusal(attempt());
  expect(isVaultError(error, 'USAGE'), String(error)).toBe(true);
  expect(error).toMatchObject({ reason });
  expect(sha256(await readFile(path))).toBe(before);
  return error as VaultError;
}

describe('addHiddenVolume: how much fits', () => {
  it('accepts exactly the largest size that fits, refuses one sector more; the mtime moves, every cipher is destroyed', async () => {
    const path = await vaultHolding('largest.vol', ['mkfs.exfat']);
    const room = await add(path, 2 * MiB);
    const largest = room.maxHiddenBytes;
    expect(largest % 4096).toBe(0);

    const tooLarge = await refusedUnchanged(path, () => add(path, largest + 4096), 'hidden-too-large');
    expect(tooLarge.message).toBe(
      `a hidden volume of ${tooLargeText(largest + 4096)} does not fit: ` +
        `the outer exfat filesystem uses ${tooLargeText(room.usage.usedEnd)} of its 15.8 MiB volume, and 1 MiB stay free after it`,
    );
    expect(tooLarge.hint).toBe(`the largest hidden volume that fits is ${tooLargeText(largest, Math.floor)}`);
    expect(tooLarge.details).toEqual({
      largest: tooLargeText(largest, Math.floor),
      option: `${Math.floor(largest / MiB)}M`,
    });

    // A write is a change: the file's mtime moves (backup tools look at it), not restored afterwards.
    const old = new Date('2001-01-01T00:00:00Z');
    await utimes(path, old, old);
    ciphers.length = 0;
    await add(path, largest);
    expect((await stat(path)).mtimeMs).toBeGreaterThan(old.getTime());
    const hidden = await openVault(path, await secret('hidden password'), { costLevel, readOnly: true });
    expect(hidden.size).toBe(largest);
    await hidden.close();
    // The read-only outer handle that measured, the hidden one that formatted, the check above.
    expect(ciphers.length).toBe(3);
    expect(ciphers.every((cipher) => cipher.destroyed)).toBe(true);
  });

  it.skipIf(!haveMtools)(
    'says there is no room when the outer filesystem reaches into the margin',
    async () => {
      const path = await fatWithFile('full.vol', 14600);
      const error = await refusedUnchanged(path, () => add(path, MIN_DATA_BYTES), 'hidden-no-room');
      expect(error.message).toMatch(
        /^no room for a hidden volume: the outer fat16 filesystem uses 14\.\d MiB of its 15\.8 MiB volume$/,
      );
      expect(error.hint).toBe('delete files from the outer volume (or grow the vault), then try again');
    },
  );

  it.skipIf(!haveMtools)('names a largest size under 1 MiB in KiB', async () => {
    // 14150 KiB of file leave 904 KiB after the margin (measured on this layout of mkfs.vfat -F 16).
    const path = await fatWithFile('kib.vol', 14150);
    const error = await refusedUnchanged(path, () => add(path, MiB), 'hidden-too-large');
    expect(error.hint).toBe('the largest hidden volume that fits is 904 KiB');
    expect(error.details).toEqual({ largest: '904 KiB', option: '904K' });
    const room = await add(path, 904 * 1024);
    expect(room.maxHiddenBytes).toBe(904 * 1024);
  });

  it('counts a room of exactly the smallest volume as room', () => {
    const outer = 64 * MiB;
    const usage = {
      filesystem: 'exfat' as const,
      usedEnd: outer - MiB - MIN_DATA_BYTES,
      filesystemBytes: outer,
    };
    expect(hiddenRoom(outer, usage).maxHiddenBytes).toBe(MIN_DATA_BYTES);
    expect(hiddenRoom(outer, { ...usage, usedEnd: usage.usedEnd + 1 }).maxHiddenBytes).toBe(0);
  });
});

/** "12.1 MiB" as the messages print sizes (one decimal, none when whole). */
function tooLargeText(bytes: number, round: (value: number) => number = Math.round): string {
  const tenths = round((bytes / MiB) * 10);
  return `${tenths % 10 === 0 ? tenths / 10 : (tenths / 10).toFixed(1)} MiB`;
}

describe('addHiddenVolume: outer volumes it cannot use', () => {
  it('refuses an outer volume with no filesystem, naming the types it can measure', async () => {
    const path = await vaultHolding('empty.vol', null);
    const error = await refusedUnchanged(path, () => add(path, 2 * MiB), 'hidden-outer-unmeasurable');
    expect(error.message).toBe(
      'the outer volume holds no exfat or vfat filesystem: vault cannot tell which part of it is free, ' +
        'so a hidden volume in its tail would be overwritten',
    );
    expect(error.hint).toBe(
      'a hidden volume can be added only when the outer volume is exfat or vfat; otherwise make a new ' +
        'vault with one and copy the files over',
    );
    expect(error.details).toEqual({ types: 'exfat or vfat' });
  });

  it('says why ext4 and ntfs cannot be measured', async () => {
    const ext4 = await vaultHolding('ext4.vol', ['mkfs.ext4', '-q', '-F']);
    const refusedExt4 = await refusedUnchanged(ext4, () => add(ext4, 2 * MiB), 'hidden-outer-unmeasurable');
    expect(refusedExt4.message).toMatch(
      /^the outer volume holds ext4, which keeps metadata \(backup superblocks, group descriptors, inode tables\) all over the volume: /,
    );
    const ntfs = await vaultHolding('ntfs.vol', ['mkfs.ntfs', '-F', '-Q']);
    const refusedNtfs = await refusedUnchanged(ntfs, () => add(ntfs, 2 * MiB), 'hidden-outer-unmeasurable');
    expect(refusedNtfs.message).toMatch(
      /^the outer volume holds ntfs, which keeps metadata \(its own structures\) all over the volume: /,
    );
  });

  it('refuses when the last sector of the hidden area was never written', async () => {
    const path = await vaultHolding('hole.vol', ['mkfs.exfat']);
    // As a --quick vault leaves it: zeros in the file where the last hidden sector would be.
    const handle = await open(path, 'r+');
    await handle.write(Buffer.alloc(4096), 0, 4096, DATA_OFFSET + DATA_SIZE - 4096);
    await handle.close();
    const error = await refusedUnchanged(path, () => add(path, 2 * MiB), 'hidden-in-unfilled');
    expect(error.hint).toBe('make a new vault with a hidden volume and copy the files over');
  });

  it('gives the exact hints of the outer volumes it leaves alone', async () => {
    const path = await vaultHolding('hints.vol', ['mkfs.exfat']);
    await add(path, 2 * MiB);
    const hiddenAsOuter = await refusal(
      addHiddenVolume(path, {
        outerSecret: await secret('hidden password'),
        costLevel,
        hidden: { dataSize: 2 * MiB, secret: await secret('another') },
      }),
    );
    expect((hiddenAsOuter as VaultError).hint).toBe(
      'give the secret of the outer volume first, then the new hidden secret',
    );

    const damaged = await vaultHolding('hints-damaged.vol', ['mkfs.exfat']);
    const handle = await open(damaged, 'r+');
    await handle.write(Buffer.alloc(4096, 7), 0, 4096, FILE_SIZE - 131072);
    await handle.close();
    const repair = await refusedUnchanged(damaged, () => add(damaged, 2 * MiB), 'hidden-needs-repair');
    expect(repair.hint).toBe('repair the vault first, then add the hidden volume');

    await truncate(damaged, 0);
    const resized = await vaultHolding('hints-resized.vol', ['mkfs.exfat']);
    await truncate(resized, FILE_SIZE + MiB);
    const resize = await refusedUnchanged(
      resized,
      () => add(resized, 2 * MiB),
      'hidden-after-interrupted-resize',
    );
    expect(resize.hint).toBe('resize it again to the size you wanted, then add the hidden volume');
  });
});

describe('addHiddenVolume: interruptions and a prompted secret', () => {
  it('Ctrl-C before the write: nothing changed, the prompt never shown', async () => {
    const path = await vaultHolding('abort-early.vol', ['mkfs.exfat']);
    const controller = new AbortController();
    controller.abort();
    let prompted = false;
    const before = sha256(await readFile(path));
    const error = await refusal(
      add(path, 2 * MiB, {
        signal: controller.signal,
        hiddenSecret: async () => {
          prompted = true;
          return secret('hidden password');
        },
      }),
    );
    expect(isVaultError(error, 'INTERRUPTED')).toBe(true);
    expect(error.message).toBe('interrupted; nothing was changed');
    expect(prompted).toBe(false);
    expect(sha256(await readFile(path))).toBe(before);
  });

  it('Ctrl-C at the prompt: nothing changed, the secret it returned is wiped', async () => {
    const path = await vaultHolding('abort-prompt.vol', ['mkfs.exfat']);
    const controller = new AbortController();
    let material: Buffer | null = null;
    let read: Secret | null = null;
    const before = sha256(await readFile(path));
    const error = await refusal(
      add(path, 2 * MiB, {
        signal: controller.signal,
        hiddenSecret: async () => {
          read = await secret('hidden password');
          material = Buffer.from(read.material.buffer, read.material.byteOffset, read.material.length);
          controller.abort();
          return read;
        },
      }),
    );
    expect(isVaultError(error, 'INTERRUPTED')).toBe(true);
    expect(error.message).toBe('interrupted; nothing was changed');
    expect(sha256(await readFile(path))).toBe(before);
    expect(material).not.toBeNull();
    expect((material as unknown as Buffer).every((byte) => byte === 0)).toBe(true);
    expect(() => (read as unknown as Secret).material).toThrow(/already wiped/);
  });

  it('a prompted secret opens the new hidden volume and is wiped afterwards', async () => {
    const path = await vaultHolding('prompted.vol', ['mkfs.exfat']);
    let read: Secret | null = null;
    await add(path, 2 * MiB, {
      hiddenSecret: async () => {
        read = await secret('prompted hidden');
        return read;
      },
    });
    expect(() => (read as unknown as Secret).material).toThrow(/already wiped/);
    const hidden = await openVault(path, await secret('prompted hidden'), { costLevel, readOnly: true });
    expect(hidden.info().kind).toBe('hidden');
    await hidden.close();
  });

  it('after the header is written: the failure, what is left, and that a rerun replaces it', async () => {
    const path = await vaultHolding('half.vol', ['mkfs.exfat']);
    const cause = new Error('mkfs died');
    const failed = await refusal(
      addHiddenVolume(path, {
        outerSecret: await secret('outer password'),
        costLevel,
        hidden: {
          dataSize: 2 * MiB,
          secret: await secret('hidden password'),
          format: async () => {
            throw cause;
          },
        },
      }),
    );
    const halfDone =
      'the hidden header was written, but its volume may be half-formatted; the outer volume is unchanged';
    expect(isVaultError(failed, 'IO')).toBe(true);
    expect(failed.message).toBe(`I/O error on ${path}: Error: mkfs died; ${halfDone}`);
    expect((failed as VaultError).hint).toBe(
      'run the same command again: it replaces the half-made hidden volume',
    );
    expect((failed.cause as Error).cause).toBe(cause);

    const controller = new AbortController();
    const interrupted = await refusal(
      addHiddenVolume(path, {
        outerSecret: await secret('outer password'),
        costLevel,
        signal: controller.signal,
        hidden: {
          dataSize: 2 * MiB,
          secret: await secret('hidden password'),
          format: async () => controller.abort(),
        },
      }),
    );
    expect(isVaultError(interrupted, 'INTERRUPTED')).toBe(true);
    expect(interrupted.message).toBe(`interrupted; ${halfDone}`);
    expect((interrupted as VaultError).hint).toBe(
      'run the same command again: it replaces the half-made hidden volume',
    );
  });
});
