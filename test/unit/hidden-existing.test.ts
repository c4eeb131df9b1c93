// Adding a hidden volume to an existing vault (src/container/hidden.ts): the outer volume is not
// touched (every byte outside the hidden header sectors and the hidden area stays), both secrets open
// their volume, and every refusal (too large, ext4, --quick, wrong secret) leaves the file as it was.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliWords } from '../../src/cli/hints.js';
import {
  addHiddenVolume,
  addKey,
  createVault,
  hiddenRoom,
  isVaultError,
  openVault,
  Secret,
  type Vault,
} from '../../src/container/index.js';
import { DATA_OFFSET, HIDDEN_AREA_OFFSET, OVERHEAD_BYTES } from '../../src/container/layout.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';
import type { VaultError } from '../../src/host/errors.js';
import { findTool } from '../../src/host/process.js';
import { refusal } from '../tools/refusal.js';

const costLevel = MIN_COST_LEVEL;
const MiB = 2 ** 20;
const FILE_SIZE = 16 * MiB;
const DATA_SIZE = FILE_SIZE - OVERHEAD_BYTES;
const HIDDEN_SIZE = 4 * MiB;
let dir: string;
const secret = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });
const haveMtools = findTool('mcopy') !== null;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-hidden-add-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A filesystem image of the outer volume's size: mkfs, then `fill` (e.g. mcopy files onto it). */
async function filesystemImage(
  name: string,
  mkfs: string[],
  fill?: (image: string) => void,
): Promise<Buffer> {
  const image = join(dir, `${name}.img`);
  await writeFile(image, '');
  await truncate(image, DATA_SIZE);
  execFileSync(mkfs[0] as string, [...mkfs.slice(1), image], { stdio: 'ignore' });
  fill?.(image);
  return readFile(image);
}

/** The image up to its last non-zero sector: what mkfs and the file writers actually wrote. */
function written(image: Buffer): Buffer {
  let end = image.length;
  while (end > 0 && image.subarray(end - 4096, end).every((byte) => byte === 0)) end -= 4096;
  return image.subarray(0, end);
}

/** A vault whose outer volume holds `image` (written through the vault, as mkfs through the bridge would). */
async function vaultHolding(name: string, image: Buffer, quick = false): Promise<string> {
  const path = join(dir, name);
  await createVault(path, {
    fileSize: FILE_SIZE,
    secret: await secret('outer password'),
    costLevel,
    quick,
    format: (vault) => vault.writeAt(written(image), 0),
  });
  return path;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** The file without the two hidden header sectors and the hidden area: what must never change. */
function outsideHidden(file: Buffer, hiddenSize: number): string {
  const hiddenStart = DATA_OFFSET + DATA_SIZE - hiddenSize;
  return sha256(
    Buffer.concat([
      file.subarray(0, HIDDEN_AREA_OFFSET),
      file.subarray(HIDDEN_AREA_OFFSET + 4096, hiddenStart),
      file.subarray(DATA_OFFSET + DATA_SIZE, file.length - 65536),
      file.subarray(file.length - 65536 + 4096),
    ]),
  );
}

async function outerPlain(path: string): Promise<{ info: ReturnType<Vault['info']>; plain: Buffer }> {
  const vault = await openVault(path, await secret('outer password'), { costLevel, readOnly: true });
  try {
    const plain = Buffer.alloc(vault.size);
    await vault.readAt(plain, 0);
    return { info: vault.info(), plain };
  } finally {
    await vault.close();
  }
}

async function add(
  path: string,
  hiddenSize: number,
  hiddenPassword = 'hidden password',
  outer = 'outer password',
) {
  return addHiddenVolume(path, {
    outerSecret: await secret(outer),
    costLevel,
    hidden: {
      dataSize: hiddenSize,
      secret: await secret(hiddenPassword),
      format: async (vault) => {
        await vault.writeAt(Buffer.from(`hidden start ${hiddenPassword}`), 0);
        await vault.writeAt(Buffer.from('hidden end'), vault.size - 10);
      },
    },
  });
}

describe('adding a hidden volume to an existing vault', () => {
  it.skipIf(!haveMtools)('leaves the outer volume untouched; each secret opens its own volume', async () => {
    const image = await filesystemImage('files', ['mkfs.vfat', '-F', '16'], (at) => {
      const payload = join(dir, 'payload');
      execFileSync('dd', ['if=/dev/urandom', `of=${payload}`, 'bs=1M', 'count=3'], { stdio: 'ignore' });
      execFileSync('mcopy', ['-i', at, payload, '::/decoy.bin']);
    });
    const path = await vaultHolding('outer-vfat.vol', image);
    const before = await readFile(path);
    const outerBefore = await outerPlain(path);

    const room = await add(path, HIDDEN_SIZE);
    expect(room.usage.filesystem).toBe('fat16');
    expect(room.usage.usedEnd).toBeGreaterThan(3 * MiB);

    const after = await readFile(path);
    expect(after.length).toBe(before.length);
    expect(outsideHidden(after, HIDDEN_SIZE)).toBe(outsideHidden(before, HIDDEN_SIZE));
    // The hidden header sectors did change (random bytes before, a sealed header now).
    const hiddenFront = (file: Buffer) =>
      sha256(file.subarray(HIDDEN_AREA_OFFSET, HIDDEN_AREA_OFFSET + 4096));
    expect(hiddenFront(after)).not.toBe(hiddenFront(before));

    const outerAfter = await outerPlain(path);
    expect(outerAfter.info).toEqual(outerBefore.info);
    // The outer filesystem, decoy file included, reads back byte for byte, and so does the free space.
    const filesystem = written(image);
    expect(sha256(outerAfter.plain.subarray(0, filesystem.length))).toBe(sha256(filesystem));
    const belowHidden = DATA_SIZE - HIDDEN_SIZE;
    expect(sha256(outerAfter.plain.subarray(0, belowHidden))).toBe(
      sha256(outerBefore.plain.subarray(0, belowHidden)),
    );

    const hidden = await openVault(path, await secret('hidden password'), { costLevel, readOnly: true });
    try {
      expect(hidden.info()).toMatchObject({ kind: 'hidden', dataSize: HIDDEN_SIZE });
      expect(hidden.info().dataOffset).toBe(DATA_OFFSET + DATA_SIZE - HIDDEN_SIZE);
      const start = Buffer.alloc(28);
      await hidden.readAt(start, 0);
      expect(start.toString()).toBe('hidden start hidden password');
      const end = Buffer.alloc(10);
      await hidden.readAt(end, HIDDEN_SIZE - 10);
      expect(end.toString()).toBe('hidden end');
    } finally {
      await hidden.close();
    }
  });

  it('refuses a hidden volume too large for the free tail, naming the largest that fits (which then works)', async () => {
    const path = await vaultHolding('outer-exfat.vol', await filesystemImage('exfat', ['mkfs.exfat']));
    const before = sha256(await readFile(path));
    const error = await refusal(add(path, DATA_SIZE - MiB));
    expect(isVaultError(error, 'USAGE')).toBe(true);
    expect(error.message).toMatch(/does not fit: the outer exfat filesystem uses/);
    expect(error).toMatchObject({ reason: 'hidden-too-large' });
    const hint = cliWords(error as VaultError).hint ?? '';
    const largest = /give --hidden (\d+)M or less/.exec(hint);
    expect(largest, hint).not.toBeNull();
    expect(sha256(await readFile(path))).toBe(before);

    const fits = Number(largest?.[1]) * MiB;
    expect(fits).toBeGreaterThan(8 * MiB); // an empty 16 MiB exfat leaves most of it free
    const tooMuch = await refusal(add(path, fits + MiB));
    expect(isVaultError(tooMuch, 'USAGE')).toBe(true);
    const room = await add(path, fits);
    expect(room.maxHiddenBytes).toBeGreaterThanOrEqual(fits);
    const hidden = await openVault(path, await secret('hidden password'), { costLevel, readOnly: true });
    expect(hidden.size).toBe(fits);
    await hidden.close();
  });

  it('refuses a wrong outer secret (cannot unlock), ext4, a --quick vault and a secret equal to the outer one', async () => {
    const exfat = await vaultHolding('refusals.vol', await filesystemImage('exfat2', ['mkfs.exfat']));
    const exfatBefore = sha256(await readFile(exfat));
    const wrong = await refusal(add(exfat, HIDDEN_SIZE, 'hidden password', 'not the password'));
    expect(isVaultError(wrong, 'CANNOT_UNLOCK')).toBe(true);
    const same = await refusal(add(exfat, HIDDEN_SIZE, 'outer password'));
    expect(isVaultError(same, 'USAGE')).toBe(true);
    expect(same.message).toMatch(/different from the outer one/);
    expect(sha256(await readFile(exfat))).toBe(exfatBefore);
    // A secret of another outer keyslot would always open the outer volume, never the hidden one.
    await addKey(exfat, await secret('outer password'), await secret('second outer'), { costLevel });
    const otherSlot = await refusal(add(exfat, HIDDEN_SIZE, 'second outer'));
    expect(isVaultError(otherSlot, 'USAGE')).toBe(true);
    expect(otherSlot.message).toMatch(/opens the outer volume of this vault/);

    const ext4 = await vaultHolding('ext4.vol', await filesystemImage('ext4', ['mkfs.ext4', '-q', '-F']));
    const ext4Before = sha256(await readFile(ext4));
    const refusedExt4 = await refusal(add(ext4, HIDDEN_SIZE));
    expect(isVaultError(refusedExt4, 'USAGE')).toBe(true);
    expect(refusedExt4.message).toMatch(/holds ext4, which keeps metadata .* all over the volume/);
    expect(sha256(await readFile(ext4))).toBe(ext4Before);

    const quick = await vaultHolding('quick.vol', await filesystemImage('exfat3', ['mkfs.exfat']), true);
    const quickBefore = sha256(await readFile(quick));
    const refusedQuick = await refusal(add(quick, HIDDEN_SIZE));
    expect(isVaultError(refusedQuick, 'USAGE')).toBe(true);
    expect(refusedQuick.message).toMatch(/never written .*without its fill/);
    expect(cliWords(refusedQuick as VaultError).message).toMatch(/never written .*--quick/);
    expect(sha256(await readFile(quick))).toBe(quickBefore);
  });

  it('a second add replaces the first hidden volume; a failed format leaves the outer volume as it was', async () => {
    const path = await vaultHolding('replace.vol', await filesystemImage('exfat4', ['mkfs.exfat']));
    const before = await readFile(path);
    await add(path, HIDDEN_SIZE, 'first hidden');
    await add(path, 2 * MiB, 'second hidden');
    const first = await refusal(openVault(path, await secret('first hidden'), { costLevel }));
    expect(isVaultError(first, 'CANNOT_UNLOCK')).toBe(true);
    const second = await openVault(path, await secret('second hidden'), { costLevel, readOnly: true });
    expect(second.size).toBe(2 * MiB);
    await second.close();

    const failed = await refusal(
      addHiddenVolume(path, {
        outerSecret: await secret('outer password'),
        costLevel,
        hidden: {
          dataSize: HIDDEN_SIZE,
          secret: await secret('third hidden'),
          format: async () => {
            throw new Error('mkfs died');
          },
        },
      }),
    );
    expect(failed.message).toMatch(
      /mkfs died; the hidden header was written, but its volume may be half-formatted/,
    );
    // Ctrl-C while formatting: INTERRUPTED, saying what is left.
    const controller = new AbortController();
    const interrupted = await refusal(
      addHiddenVolume(path, {
        outerSecret: await secret('outer password'),
        costLevel,
        signal: controller.signal,
        hidden: {
          dataSize: HIDDEN_SIZE,
          secret: await secret('fourth hidden'),
          format: async (vault) => {
            await vault.writeAt(Buffer.alloc(4096, 1), 0);
            controller.abort();
          },
        },
      }),
    );
    expect(isVaultError(interrupted, 'INTERRUPTED')).toBe(true);
    expect(interrupted.message).toMatch(/interrupted; the hidden header was written/);
    expect(outsideHidden(await readFile(path), HIDDEN_SIZE)).toBe(outsideHidden(before, HIDDEN_SIZE));
    // Running it again finishes the job.
    await add(path, HIDDEN_SIZE, 'third hidden');
    const third = await openVault(path, await secret('third hidden'), { costLevel, readOnly: true });
    expect(third.size).toBe(HIDDEN_SIZE);
    await third.close();
    expect((await outerPlain(path)).info.kind).toBe('outer');
  });

  it('keeps a margin of 1% of the outer volume, at least 1 MiB, after the last used byte', () => {
    const usage = { filesystem: 'exfat' as const, usedEnd: 10 * MiB + 1, filesystemBytes: 1024 * MiB };
    const large = hiddenRoom(1024 * MiB, usage);
    expect(large.marginBytes).toBe(Math.ceil((1024 * MiB) / 100 / 4096) * 4096);
    expect(large.maxHiddenBytes).toBe(1024 * MiB - (10 * MiB + 4096) - large.marginBytes);
    const small = hiddenRoom(64 * MiB, usage);
    expect(small.marginBytes).toBe(MiB);
    expect(small.maxHiddenBytes).toBe(64 * MiB - 10 * MiB - 4096 - MiB);
    expect(hiddenRoom(11 * MiB, usage).maxHiddenBytes).toBe(0);
  });
});
