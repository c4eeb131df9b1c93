// --type/--hash/--pim parsing, and the --hash names the help text lists without loading foreign-kdf.
import { describe, expect, it } from 'vitest';
import { HASH_NAMES, parseVolumeTypeOptions } from '../../src/cli/volume-options.js';
import { VOLUME_TYPES } from '../../src/container/volume.js';
import { PRFS } from '../../src/crypto/foreign-kdf.js';

describe('volume type options', () => {
  it('lists every PBKDF2 hash foreign-kdf knows, in its order', () => {
    expect([...HASH_NAMES]).toEqual([...PRFS]);
  });

  it('parses a hash by any spelling, argon2 too, and refuses an unknown one with the list', async () => {
    await expect(parseVolumeTypeOptions({ hash: 'SHA-512' })).resolves.toEqual({ hash: 'sha512' });
    await expect(parseVolumeTypeOptions({ hash: 'Argon2id' })).resolves.toEqual({ hash: 'argon2' });
    await expect(parseVolumeTypeOptions({ hash: 'md5' })).rejects.toMatchObject({
      code: 'USAGE',
      hint: `--hash is one of ${PRFS.join(', ')}, argon2`,
    });
  });

  it('parses every type and a PIM; refuses --hash for a vault, an unknown type and a bad PIM', async () => {
    for (const type of VOLUME_TYPES) {
      await expect(parseVolumeTypeOptions({ type: type.toUpperCase() })).resolves.toEqual({ type });
    }
    await expect(parseVolumeTypeOptions({ type: 'veracrypt', pim: '485' })).resolves.toEqual({
      type: 'veracrypt',
      pim: 485,
    });
    await expect(parseVolumeTypeOptions({ type: 'vault', hash: 'sha512' })).rejects.toMatchObject({
      code: 'USAGE',
    });
    await expect(parseVolumeTypeOptions({ type: 'zip' })).rejects.toMatchObject({ code: 'USAGE' });
    await expect(parseVolumeTypeOptions({ pim: '0' })).rejects.toMatchObject({ code: 'USAGE' });
  });
});
