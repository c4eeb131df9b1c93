// addHiddenVolume (src/container/hidden.ts) before and around its one write: the outer volumes it
// refuses to touch (a hidden secret given as the outer one, a resize left half-done, a damaged header
// copy), each leaving the file byte for byte as it was, and the keys of both header states wiped on
// every way out, including the ones where no Vault handle was made to wipe them.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { openContainerFile } from '../../src/container/file.js';
import type { HeaderState } from '../../src/container/header-pair.js';
import { addHiddenVolume, createVault, isVaultError, Secret } from '../../src/container/index.js';
import { OVERHEAD_BYTES } from '../../src/container/layout.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';
import { refusal } from '../tools/refusal.js';

// Every header state addHiddenVolume unlocks or builds, to look at its keys afterwards.
const states = vi.hoisted(() => [] as HeaderState[]);
vi.mock('../../src/container/header-pair.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/container/header-pair.js')>();
  return {
    ...original,
    unlockHeaders: async (...args: Parameters<typeof original.unlockHeaders>) => {
      const state = await original.unlockHeaders(...args);
      states.push(state);
      return state;
    },
  };
});
vi.mock('../../src/container/create.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/container/create.js')>();
  return {
    ...original,
    buildHidden: async (...args: Parameters<typeof original.buildHidden>) => {
      const state = await original.buildHidden(...args);
      states.push(state);
      return state;
    },
  };
});

const costLevel = MIN_COST_LEVEL;
const MiB = 2 ** 20;
const FILE_SIZE = 16 * MiB;
const HIDDEN_SIZE = 4 * MiB;
let dir: string;
const secret = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-hidden-checks-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  states.length = 0;
});

/** A vault whose outer volume holds an empty exFAT filesystem (room for a hidden volume). */
async function exfatVault(name: string, hidden?: string): Promise<string> {
  const image = join(dir, `${name}.img`);
  await writeFile(image, '');
  await truncate(image, FILE_SIZE - OVERHEAD_BYTES);
  execFileSync('mkfs.exfat', [image], { stdio: 'ignore' });
  // Up to its last non-zero sector: what mkfs wrote (the rest is zeros, and a hidden volume's place).
  let bytes = await readFile(image);
  let end = bytes.length;
  while (end > 0 && bytes.subarray(end - 4096, end).every((byte) => byte === 0)) end -= 4096;
  bytes = bytes.subarray(0, end);
  const path = join(dir, name);
  await createVault(path, {
    fileSize: FILE_SIZE,
    secret: await secret('outer password'),
    costLevel,
    format: (vault) => vault.writeAt(bytes, 0),
    ...(hidden ? { hidden: { dataSize: HIDDEN_SIZE, secret: await secret(hidden) } } : {}),
  });
  return path;
}

async function add(path: string, outer = 'outer password', openFile = openContainerFile) {
  return addHiddenVolume(path, {
    outerSecret: await secret(outer),
    costLevel,
    openFile,
    hidden: { dataSize: HIDDEN_SIZE, secret: await secret('new hidden password') },
  });
}

function expectAllWiped(kinds: string[]): void {
  expect(states.map((state) => state.kind)).toEqual(kinds);
  for (const state of states) {
    expect(state.masterKey.every((byte) => byte === 0)).toBe(true);
    expect(state.headerKey.every((byte) => byte === 0)).toBe(true);
  }
}

describe('addHiddenVolume: the outer volumes it refuses, and its keys', () => {
  it('refuses the secret of an existing hidden volume given as the outer one; nothing written, keys wiped', async () => {
    const path = await exfatVault('has-hidden.vol', 'old hidden password');
    const before = sha256(await readFile(path));
    const error = await refusal(add(path, 'old hidden password'));
    expect(isVaultError(error, 'USAGE')).toBe(true);
    expect(error.message).toBe(
      'this secret opens a hidden volume; a hidden volume is added with the outer volume secret',
    );
    expect(sha256(await readFile(path))).toBe(before);
    expectAllWiped(['hidden']);
  });

  it('refuses a vault whose resize was left half-done (the file longer than its volume)', async () => {
    const path = await exfatVault('half-resized.vol');
    // A grow that stopped after lengthening the file: the headers still describe the old size.
    await truncate(path, FILE_SIZE + MiB);
    const before = sha256(await readFile(path));
    const error = await refusal(add(path));
    expect(isVaultError(error, 'USAGE')).toBe(true);
    expect(error.message).toMatch(/longer than its volume: an earlier resize was interrupted/);
    expect((error as { reason?: string }).reason).toBe('hidden-after-interrupted-resize');
    expect(sha256(await readFile(path))).toBe(before);
    expectAllWiped(['outer']);
  });

  it('refuses a vault with a damaged header copy, pointing to repair', async () => {
    const path = await exfatVault('damaged.vol');
    // The outer backup header: the first sector of the backup area at the end of the file.
    const handle = await open(path, 'r+');
    await handle.write(randomBytes(4096), 0, 4096, FILE_SIZE - 131072);
    await handle.close();
    const before = sha256(await readFile(path));
    const error = await refusal(add(path));
    expect(isVaultError(error, 'USAGE')).toBe(true);
    expect(error.message).toBe('one of the vault header copies is damaged or out of date');
    expect((error as { reason?: string }).reason).toBe('hidden-needs-repair');
    expect(sha256(await readFile(path))).toBe(before);
    expectAllWiped(['outer']);
  });

  it('wipes the new hidden header state when writing it fails, before any Vault holds it', async () => {
    const path = await exfatVault('write-fails.vol');
    const failing: typeof openContainerFile = async (file, mode) => {
      const real = await openContainerFile(file, mode);
      return {
        path: real.path,
        writable: real.writable,
        ...(real.fd === undefined ? {} : { fd: real.fd }),
        size: () => real.size(),
        identity: () => real.identity(),
        read: (buffer, position) => real.read(buffer, position),
        write: async () => {
          throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
        },
        sync: () => real.sync(),
        setTimes: (atime, mtime) => real.setTimes(atime, mtime),
        allocate: (length) => real.allocate(length),
        close: () => real.close(),
      };
    };
    const before = sha256(await readFile(path));
    const error = await refusal(add(path, 'outer password', failing));
    expect(isVaultError(error), String(error)).toBe(true);
    expect(sha256(await readFile(path))).toBe(before);
    expectAllWiped(['outer', 'hidden']);
  });

  it('after a successful add both states are wiped too', async () => {
    const path = await exfatVault('works.vol');
    await add(path);
    expectAllWiped(['outer', 'hidden']);
  });
});
