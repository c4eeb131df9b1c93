// docs/FORMAT.md 5.1, the cases a reader could get wrong: on equal sequence numbers the primary copy is
// authoritative; a keyslot that opens is not enough when no body of its kind opens; a file longer than
// its layout (or of an odd size) still opens. Real files, lowest cost level.
import { mkdtemp, open, readFile, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openContainerFile } from '../../src/container/file.js';
import { copySlotTable, type SlotTable } from '../../src/container/header.js';
import {
  sealHeaderPair,
  unlockHeaders,
  wipeHeaderState,
  wrapInBothCopies,
} from '../../src/container/header-pair.js';
import { createVault, isVaultError, openVault, Secret } from '../../src/container/index.js';
import { BACKUP, backupHeaderOffset, PRIMARY, SEALED_BODY_OFFSET } from '../../src/container/layout.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';

const costLevel = MIN_COST_LEVEL;
const SIZE = 2 * 1024 * 1024;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-unlock-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const secret = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });

async function newVault(name: string): Promise<string> {
  const path = join(dir, name);
  await createVault(path, { fileSize: SIZE, secret: await secret('first'), costLevel, quick: true });
  return path;
}

async function flipByte(path: string, offset: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, offset);
    byte[0] = (byte[0] as number) ^ 0xff;
    await handle.write(byte, 0, 1, offset);
  } finally {
    await handle.close();
  }
}

async function infoWith(path: string, text: string) {
  const vault = await openVault(path, await secret(text), { costLevel, readOnly: true });
  try {
    return { info: vault.info(), warnings: [...vault.warnings] };
  } finally {
    await vault.close();
  }
}

async function unlockError(path: string, text: string): Promise<unknown> {
  return openVault(path, await secret(text), { costLevel, readOnly: true }).then(
    async (vault) => {
      await vault.close();
      return null;
    },
    (error: unknown) => error,
  );
}

describe('FORMAT.md 5.1', () => {
  it('on equal sequence numbers the primary copy is authoritative, even when the backup differs', async () => {
    const path = await newVault('equal.vol');
    // A backup copy with the same sequence number as the primary but one more keyslot ("second").
    const file = await openContainerFile(path, 'write');
    try {
      const state = await unlockHeaders(file, await secret('first'), costLevel);
      try {
        const tables: [SlotTable, SlotTable] = [
          copySlotTable(state.tables[PRIMARY]),
          copySlotTable(state.tables[BACKUP]),
        ];
        await wrapInBothCopies(state, tables, 1, await secret('second'), costLevel);
        const [, backup] = sealHeaderPair(state, tables, state.slotMask | 0b10, state.sequence);
        await file.write(backup, backupHeaderOffset(state.fileSize));
        await file.sync();
      } finally {
        wipeHeaderState(state);
      }
    } finally {
      await file.close();
    }
    const first = await infoWith(path, 'first');
    expect(first.info.headers).toEqual({
      authoritative: 'primary',
      primary: { state: 'ok', sequence: 1 },
      backup: { state: 'ok', sequence: 1 },
    });
    expect(first.info.keyslots.used).toEqual([0]);
    expect(first.warnings).toEqual([]);
    // "second" opens a slot of the backup copy only; the primary's view (one slot) still decides.
    const second = await infoWith(path, 'second');
    expect(second.info.headers.authoritative).toBe('primary');
    expect(second.info.keyslots).toMatchObject({ used: [0], opened: null });
  });

  it('a keyslot that opens is not enough: with both outer bodies damaged the secret cannot unlock', async () => {
    const path = await newVault('bodies.vol');
    expect((await infoWith(path, 'first')).info.keyslots.opened).toBe(0);
    await flipByte(path, SEALED_BODY_OFFSET + 100);
    expect((await infoWith(path, 'first')).warnings).toEqual([
      'primary header damaged, using the backup; a repair rewrites it from the backup',
    ]);
    await flipByte(path, backupHeaderOffset(SIZE) + SEALED_BODY_OFFSET + 100);
    const before = await readFile(path);
    expect(isVaultError(await unlockError(path, 'first'), 'CANNOT_UNLOCK')).toBe(true);
    // The same error as a wrong password, and opening wrote nothing.
    expect(isVaultError(await unlockError(path, 'wrong'), 'CANNOT_UNLOCK')).toBe(true);
    expect((await readFile(path)).equals(before)).toBe(true);
  });

  it('a file longer than its layout, also by an odd number of bytes, opens with a warning', async () => {
    for (const extra of [65536, 1000]) {
      const path = await newVault(`longer-${extra}.vol`);
      await truncate(path, SIZE + extra);
      const { info, warnings } = await infoWith(path, 'first');
      expect(info.dataSize).toBe(SIZE - 262144);
      expect(info.headers.backup.state).toBe('ok');
      expect(warnings).toEqual([
        'the vault file is longer than its volume (an interrupted resize); resizing it again finishes the job',
      ]);
    }
  });

  it('a file shorter than 1 MiB cannot be unlocked: a cut-off vault says so to its secret only', async () => {
    const path = await newVault('short.vol');
    await truncate(path, 1024 * 1024 - 4096);
    const error = await unlockError(path, 'first');
    expect(isVaultError(error, 'IO')).toBe(true);
    expect((error as Error).message).toMatch(/is truncated/);
    expect(isVaultError(await unlockError(path, 'wrong'), 'CANNOT_UNLOCK')).toBe(true);
  });
});
