// Refusals no other unit test reached, each with its words and the file left as it was: a key update on
// a vault whose resize was interrupted (header-pair.ts), a hidden volume's secret offered as an outer
// key (header-pair.ts), a block device as a new file (staged-file.ts), and the daemon's host file
// opened on a path that is not there (fuse/host-file.ts).
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addKey, createVault, isVaultError, openVault, Secret } from '../../src/container/index.js';
import { headerOffset } from '../../src/container/layout.js';
import { checkNewFile } from '../../src/container/staged-file.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';
import { openHostFile } from '../../src/fuse/host-file.js';
import { refusal } from '../tools/refusal.js';

const costLevel = MIN_COST_LEVEL;
const MiB = 2 ** 20;
let dir = '';
const secret = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const loop0IsBlockDevice = (() => {
  try {
    return lstatSync('/dev/loop0').isBlockDevice();
  } catch {
    return false;
  }
})();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-refusal-hints-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('refusals with their words, nothing changed', () => {
  it('a key update on a vault whose grow was interrupted points to finishing the resize', async () => {
    const path = join(dir, 'grown.vol');
    await createVault(path, { fileSize: 2 * MiB, secret: await secret('pw'), costLevel });
    await truncate(path, 3 * MiB);
    const before = sha256(await readFile(path));
    const error = await refusal(addKey(path, await secret('pw'), await secret('second'), { costLevel }));
    expect(isVaultError(error, 'USAGE')).toBe(true);
    expect(error).toMatchObject({
      message: 'the vault file is longer than its volume: an earlier resize was interrupted',
      hint: 'resize it again to the size you wanted; that finishes the job',
      reason: 'interrupted-resize',
    });
    expect(sha256(await readFile(path))).toBe(before);
  });

  it("the hidden volume's secret as a new outer key is refused", async () => {
    const path = join(dir, 'with-hidden.vol');
    await createVault(path, {
      fileSize: 4 * MiB,
      secret: await secret('outer'),
      costLevel,
      hidden: { dataSize: MiB, secret: await secret('hidden') },
    });
    const before = sha256(await readFile(path));
    const error = await refusal(addKey(path, await secret('outer'), await secret('hidden'), { costLevel }));
    expect(isVaultError(error, 'USAGE')).toBe(true);
    expect(error).toMatchObject({
      message:
        'this secret opens the hidden volume of this vault; as a secret of the outer volume it would make the hidden volume unreachable',
      hint: 'choose another password or keyfile',
    });
    expect(sha256(await readFile(path))).toBe(before);
  });

  it.skipIf(!loop0IsBlockDevice)('a block device is never taken as a new file, even with force', async () => {
    const error = await refusal(checkNewFile('/dev/loop0', true));
    expect(isVaultError(error, 'USAGE')).toBe(true);
    expect(error.message).toBe('not a regular file: /dev/loop0 (a block device)');
  });

  it('the host file of a path that is not there', async () => {
    const missing = join(dir, 'missing.vol');
    const error = await refusal(openHostFile(missing, 'write'));
    expect(isVaultError(error, 'NOT_FOUND')).toBe(true);
    expect(error.message).toBe(`no such file: ${missing}`);
  });

  it('a longer file whose only copy that opens does not fit it is not called truncated', async () => {
    // The backup header of a 2 MiB vault at the end of a 3 MiB file, the primary destroyed: the secret
    // opens that backup, whose body describes a smaller file. Nothing is missing: cannot unlock.
    const path = join(dir, 'moved-backup.vol');
    await createVault(path, { fileSize: 2 * MiB, secret: await secret('pw'), costLevel });
    const handle = await open(path, 'r+');
    try {
      const backup = Buffer.alloc(4096);
      await handle.read(backup, 0, 4096, headerOffset('outer', 1, 2 * MiB));
      await handle.truncate(3 * MiB);
      await handle.write(backup, 0, 4096, headerOffset('outer', 1, 3 * MiB));
      await handle.write(randomBytes(4096), 0, 4096, 0);
    } finally {
      await handle.close();
    }
    const error = await refusal(openVault(path, await secret('pw'), { costLevel }));
    expect(isVaultError(error, 'CANNOT_UNLOCK'), String(error)).toBe(true);
  });
});
