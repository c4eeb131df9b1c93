// exportImage and streamImage (src/container/image.ts) only read the vault: the handle they read through
// is read-only (a read-write one would sync the vault and could write to it), and the vault file is
// byte for byte and mtime as it was afterwards.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { exportImage, streamImage } from '../../src/container/image.js';
import { createVault, Secret } from '../../src/container/index.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';

// Whether each volume the image code opened was read-only.
const opened = vi.hoisted(() => [] as boolean[]);
vi.mock('../../src/container/volume.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/container/volume.js')>();
  return {
    ...original,
    openVolume: async (...args: Parameters<typeof original.openVolume>) => {
      const volume = await original.openVolume(...args);
      opened.push(volume.readOnly);
      return volume;
    },
  };
});

const costLevel = MIN_COST_LEVEL;
let dir = '';
const password = () => Secret.fromInputs({ password: Buffer.from('pw', 'utf8') });
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-image-ro-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('exporting reads the vault through a read-only handle', () => {
  it('exportImage and streamImage', async () => {
    const path = join(dir, 'source.vol');
    await createVault(path, { fileSize: 2 << 20, secret: await password(), costLevel });
    const before = sha256(await readFile(path));
    const mtime = (await stat(path)).mtimeMs;
    const exported = await exportImage(path, await password(), join(dir, 'out.img'), { costLevel });
    let streamed = 0;
    await streamImage(
      path,
      await password(),
      async (chunk) => {
        streamed += chunk.length;
      },
      { costLevel },
    );
    expect(streamed).toBe(exported.size);
    expect(opened).toEqual([true, true]);
    expect(sha256(await readFile(path))).toBe(before);
    expect((await stat(path)).mtimeMs).toBe(mtime);
  });
});
