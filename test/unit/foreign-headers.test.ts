// Damaged and forged foreign headers, for mutation testing (scripts/mutation-area.mjs foreign): each
// check that keeps a damaged or forged header from opening, or from putting the data area somewhere
// else, is met by a header that fails only that check. LUKS1 headers from cryptsetup, patched (LUKS1
// has no header checksum); LUKS2 headers from cryptsetup with their JSON edited and both checksums
// recomputed (as a forger would); VeraCrypt/TrueCrypt headers from the test writer with fields edited
// before sealing. Every refusal leaves the file as it was.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openContainerFile } from '../../src/container/file.js';
import type { ForeignVolume } from '../../src/container/foreign-volume.js';
import { unlockLuks } from '../../src/container/formats/luks.js';
import { hasLuksMagic, LUKS_MAGIC } from '../../src/container/formats/luks-magic.js';
import { unlockTcrypt } from '../../src/container/formats/tcrypt.js';
import { Secret } from '../../src/container/secret.js';
import { openVolume, type VolumeOpenOptions } from '../../src/container/volume.js';
import { cryptsetup, FAST_PBKDF2, luksFormat, SMALL_LUKS2 } from '../tools/foreign-fixtures.js';
import { type TcryptVolumeSpec, writeTcryptVolume } from '../tools/tcrypt-writer.js';

const PASSWORD = 'forged password';
const LUKS_BYTES = 3 << 20;

let dir: string;
let keyFile: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-foreign-headers-'));
  keyFile = join(dir, 'pass');
  await writeFile(keyFile, PASSWORD);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function failure(attempt: Promise<unknown>): Promise<unknown> {
  return attempt.then(
    () => null,
    (caught: unknown) => caught,
  );
}

async function open(path: string, options: VolumeOpenOptions, password = PASSWORD): Promise<ForeignVolume> {
  const secret = await Secret.fromInputs({ password: Buffer.from(password) }, { foreign: true });
  try {
    return (await openVolume(path, secret, options)) as ForeignVolume;
  } finally {
    secret.wipe();
  }
}

let written = 0;

/** Writes `image` to a new file, opens it, and checks that a refusal left the file as it was. */
async function attempt(
  image: Buffer,
  options: VolumeOpenOptions,
  password = PASSWORD,
): Promise<{ error: unknown; volume: ForeignVolume | null }> {
  const path = join(dir, `image-${written++}`);
  await writeFile(path, image);
  const outcome = await open(path, options, password).then(
    (volume) => ({ error: null, volume }),
    (error: unknown) => ({ error, volume: null }),
  );
  if (outcome.volume) return outcome;
  expect(readFileSync(path).equals(image)).toBe(true);
  return outcome;
}

async function refused(image: Buffer, options: VolumeOpenOptions, expected: Record<string, unknown>) {
  const { error } = await attempt(image, options);
  expect(error).toMatchObject(expected);
}

const CANNOT_UNLOCK_LUKS = {
  code: 'CANNOT_UNLOCK',
  message:
    'cannot unlock the volume as LUKS: wrong password, keyfile, cost level or PIM, or not such a volume',
};

// ---- LUKS magic ----

describe('the LUKS magic', () => {
  it('a file of exactly the magic has it; one byte shorter has not (and is not read)', async () => {
    const path = join(dir, 'magic');
    await writeFile(path, LUKS_MAGIC);
    const file = await openContainerFile(path, 'read');
    expect(await hasLuksMagic(file)).toBe(true);
    await file.close();
    await writeFile(path, LUKS_MAGIC.subarray(0, 5));
    const short = await openContainerFile(path, 'read');
    expect(await hasLuksMagic(short)).toBe(false);
    await short.close();
  });
});

// ---- LUKS1 ----

describe.skipIf(!cryptsetup)('forged LUKS1 headers', () => {
  let luks1: Buffer;
  beforeAll(async () => {
    const path = await luksFormat(join(dir, 'base.luks1'), LUKS_BYTES, keyFile, [
      '--type',
      'luks1',
      '--pbkdf-force-iterations',
      '1000',
    ]);
    luks1 = readFileSync(path);
  });

  /** A copy of the volume with `patch` applied to its header. */
  const patched = (patch: (header: Buffer) => void) => {
    const image = Buffer.from(luks1);
    patch(image);
    return image;
  };
  const SLOT0 = 208;

  it('the untouched volume opens (the base of every forgery below)', async () => {
    const { error, volume } = await attempt(Buffer.from(luks1), { type: 'luks' });
    expect(error).toBeNull();
    expect(volume?.info()).toMatchObject({ format: 'luks1', keyslot: 0, kind: 'normal' });
    expect(volume?.warnings).toEqual([]);
    await volume?.close();
    // Cut to the 4096 bytes LUKS reads first: the data area is outside the file (not "cannot unlock").
    const { error: cut } = await attempt(luks1.subarray(0, 4096), { type: 'luks' });
    expect(cut).toMatchObject({
      code: 'IO',
      message: 'the LUKS1 header puts the data area outside the file (truncated or damaged)',
    });
  });

  it('a disabled keyslot does not open, though its key material is still there', async () => {
    await refused(
      patched((image) => image.writeUInt32BE(0x0000dead, SLOT0)),
      { type: 'luks' },
      CANNOT_UNLOCK_LUKS,
    );
  });

  it('a keyslot with 0 iterations is skipped: cannot unlock, not a crash', async () => {
    await refused(
      patched((image) => image.writeUInt32BE(0, SLOT0 + 4)),
      { type: 'luks' },
      CANNOT_UNLOCK_LUKS,
    );
  });

  it('a keyslot whose key material lies past the end of the file: cannot unlock', async () => {
    await refused(
      patched((image) => image.writeUInt32BE(LUKS_BYTES / 512 - 8, SLOT0 + 40)),
      { type: 'luks' },
      CANNOT_UNLOCK_LUKS,
    );
  });

  it('a wrong master key digest does not open', async () => {
    await refused(
      patched((image) => image.writeUInt8((image[112] as number) ^ 1, 112)),
      { type: 'luks' },
      CANNOT_UNLOCK_LUKS,
    );
  });

  it('a data area inside the header is refused (its writes would land on the keyslots)', async () => {
    await refused(
      patched((image) => image.writeUInt32BE(1, 104)),
      { type: 'luks' },
      {
        code: 'IO',
        message: 'the LUKS1 header puts the data area outside the file (truncated or damaged)',
        hint: 'check the file; compare its size with the original',
      },
    );
  });

  it('a key size the cipher does not take is refused, naming it', async () => {
    await refused(
      patched((image) => image.writeUInt32BE(48, 108)),
      { type: 'luks' },
      {
        code: 'USAGE',
        message: 'this LUKS1 volume has a 384-bit key for aes-xts-plain64',
        hint: 'vault opens 256- and 512-bit XTS keys',
      },
    );
  });

  it('a cipher vault does not open is refused, naming it', async () => {
    await refused(
      patched((image) => {
        image.fill(0, 8, 40);
        image.write('serpent', 8, 'latin1');
      }),
      { type: 'luks' },
      {
        code: 'USAGE',
        message: 'this LUKS volume uses the cipher serpent-xts-plain64, which vault does not open',
        hint: 'vault opens LUKS volumes with aes-xts-plain64 or aes-cbc-essiv:sha256',
      },
    );
  });

  it('hashes vault does not take for LUKS are refused, naming them (a 32-byte name whole)', async () => {
    for (const hash of ['whirlpool', 'blake2s-256', 'md5', `sha256${'x'.repeat(26)}`]) {
      await refused(
        patched((image) => {
          image.fill(0, 72, 104);
          image.write(hash, 72, 'latin1');
        }),
        { type: 'luks' },
        {
          code: 'USAGE',
          message: `this LUKS volume uses the hash ${hash}, which vault does not support for LUKS`,
          hint: 'vault opens LUKS keyslots with sha1, sha256 or sha512',
        },
      );
    }
  });

  it('secrets LUKS cannot take: a keyfile over 8 MiB, several keyfiles, no foreign parts', async () => {
    const path = join(dir, 'keyfile-refusals.luks1');
    await writeFile(path, luks1);
    const big = join(dir, 'big.key');
    await writeFile(big, Buffer.alloc((8 << 20) + 1, 7));
    const small = join(dir, 'small.key');
    await writeFile(small, 'k');
    const cases: Array<[string[], Record<string, unknown>]> = [
      [
        [big],
        {
          code: 'USAGE',
          message: "the keyfile is larger than 8 MiB (cryptsetup's limit)",
          hint: 'use the keyfile LUKS was made with',
        },
      ],
      [
        [small, keyFile],
        {
          code: 'USAGE',
          message: 'a LUKS volume takes one keyfile (its bytes are the passphrase), not several',
          hint: 'give exactly one keyfile, or the password alone',
          reason: 'luks-one-keyfile',
        },
      ],
    ];
    for (const [keyfiles, expected] of cases) {
      const secret = await Secret.fromInputs({ keyfiles }, { foreign: true });
      expect(await failure(openVolume(path, secret, { type: 'luks' }))).toMatchObject(expected);
      secret.wipe();
    }
    const plain = await Secret.fromInputs({ password: Buffer.from(PASSWORD) });
    const file = await openContainerFile(path, 'read');
    await expect(unlockLuks(file, plain)).rejects.toThrow(
      'LUKS needs the foreign secret parts (Secret.fromInputs with foreign)',
    );
    await file.close();
    plain.wipe();
    expect(readFileSync(path).equals(luks1)).toBe(true);
  });
});

// ---- LUKS2 ----

interface Luks2Json {
  keyslots: Record<string, Record<string, unknown> & { kdf: Record<string, unknown> }>;
  segments: Record<string, Record<string, unknown>>;
  digests: Record<string, Record<string, unknown>>;
  tokens: Record<string, unknown>;
  config: Record<string, unknown>;
}

/**
 * Edits a LUKS2 image as a forger would: the JSON of each chosen copy (primary at 0, secondary after it),
 * then its binary header, then the checksum over the copy.
 */
function forgeLuks2(
  source: Buffer,
  edit: {
    json?: (json: Luks2Json) => void;
    text?: string;
    binary?: (copy: Buffer) => void;
    checksum?: string;
  },
  copies: Array<'primary' | 'secondary'> = ['primary', 'secondary'],
): Buffer {
  const image = Buffer.from(source);
  const headerSize = Number(image.readBigUInt64BE(8));
  for (const which of copies) {
    const copy = image.subarray(
      which === 'primary' ? 0 : headerSize,
      (which === 'primary' ? 1 : 2) * headerSize,
    );
    const area = copy.subarray(4096);
    const end = area.indexOf(0);
    const json = JSON.parse(area.subarray(0, end).toString('latin1')) as Luks2Json;
    edit.json?.(json);
    area.fill(0);
    area.write(edit.text ?? JSON.stringify(json), 'latin1');
    edit.binary?.(copy);
    const algorithm = edit.checksum ?? 'sha256';
    copy.fill(0, 72, 104);
    copy.write(algorithm, 72, 'latin1');
    copy.fill(0, 448, 512);
    // Whirlpool needs OpenSSL's legacy provider; vault refuses a Whirlpool-checksummed copy unread anyway.
    if (algorithm !== 'whirlpool') {
      createHash(algorithm === 'blake2s-256' ? 'blake2s256' : algorithm)
        .update(copy)
        .digest()
        .copy(copy, 448);
    }
  }
  return image;
}

describe.skipIf(!cryptsetup)('forged LUKS2 headers', () => {
  let luks2: Buffer;
  let dataOffset: number;
  beforeAll(async () => {
    const path = await luksFormat(join(dir, 'base.luks2'), LUKS_BYTES, keyFile, [
      '--type',
      'luks2',
      ...SMALL_LUKS2,
      ...FAST_PBKDF2,
    ]);
    luks2 = readFileSync(path);
    dataOffset = Number(
      (JSON.parse(luks2.subarray(4096, luks2.indexOf(0, 4096)).toString()) as Luks2Json).segments['0']
        ?.offset,
    );
  });

  const segment = (json: Luks2Json) => json.segments['0'] as Record<string, unknown>;
  const slot = (json: Luks2Json) => json.keyslots['0'] as Luks2Json['keyslots'][string];

  it("the re-sealed volume opens (the forger's checksums are right)", async () => {
    const { error, volume } = await attempt(forgeLuks2(luks2, {}), { type: 'luks' });
    expect(error).toBeNull();
    expect(volume?.info()).toMatchObject({ format: 'luks2', header: 'primary', dataOffset, kind: 'normal' });
    expect(volume?.warnings).toEqual([]);
    await volume?.close();
  });

  it('segments vault does not open are refused, saying what they are', async () => {
    const cases: Array<[(json: Luks2Json) => void, Record<string, unknown>]> = [
      [
        (json) => {
          json.segments['1'] = { ...segment(json), offset: String(dataOffset + 4096) };
        },
        {
          code: 'USAGE',
          message: 'this LUKS2 volume has 2 data segments',
          hint: 'vault opens LUKS2 volumes with one crypt segment',
        },
      ],
      [
        (json) => {
          json.segments = {};
        },
        { code: 'USAGE', message: 'this LUKS2 volume has 0 data segments' },
      ],
      [
        (json) => {
          segment(json).type = 'linear';
        },
        {
          code: 'USAGE',
          message: 'this LUKS2 segment has type linear',
          hint: 'vault opens crypt segments only',
        },
      ],
      [
        (json) => {
          segment(json).integrity = { type: 'hmac(sha256)' };
        },
        {
          code: 'USAGE',
          message: 'this LUKS2 volume uses dm-integrity (authenticated encryption)',
          hint: 'open it with cryptsetup; vault does not support integrity segments',
        },
      ],
      [
        (json) => {
          segment(json).sector_size = 8192;
        },
        {
          code: 'USAGE',
          message: 'this LUKS2 volume has 8192-byte sectors',
          hint: 'vault opens 512- to 4096-byte sectors',
        },
      ],
    ];
    for (const [edit, expected] of cases)
      await refused(forgeLuks2(luks2, { json: edit }), { type: 'luks' }, expected);
  });

  it('segment offsets that are not byte counts are refused', async () => {
    const invalid = {
      code: 'IO',
      message: 'the LUKS2 segment offsets are not valid',
      hint: 'check the file with cryptsetup luksDump',
    };
    for (const [field, value] of [
      ['offset', '0'],
      ['offset', 'x'],
      ['iv_tweak', '-1'],
      ['iv_tweak', 'x'],
    ] as const) {
      await refused(
        forgeLuks2(luks2, {
          json: (json) => {
            segment(json)[field] = value;
          },
        }),
        { type: 'luks' },
        invalid,
      );
    }
  });

  it('a fixed segment size is the volume size; one longer than the file is refused', async () => {
    const { volume } = await attempt(
      forgeLuks2(luks2, {
        json: (json) => {
          segment(json).size = '1048576';
        },
      }),
      { type: 'luks' },
    );
    expect(volume?.size).toBe(1048576);
    expect(volume?.info().dataSize).toBe(1048576);
    await volume?.close();
    for (const size of [String(LUKS_BYTES), 'x']) {
      await refused(
        forgeLuks2(luks2, {
          json: (json) => {
            segment(json).size = size;
          },
        }),
        { type: 'luks' },
        {
          code: 'IO',
          message: 'the LUKS2 data segment is longer than the file (truncated)',
          hint: 'check the file; compare its size with the original',
        },
      );
    }
  });

  it('a segment without a PBKDF2 digest is refused', async () => {
    const noDigest = {
      code: 'USAGE',
      message: 'this LUKS2 volume has no PBKDF2 digest for its segment',
      hint: 'check the volume with cryptsetup luksDump',
    };
    const edits: Array<(digest: Record<string, unknown>) => void> = [
      (digest) => {
        digest.type = 'argon2';
      },
      (digest) => {
        digest.segments = ['1'];
      },
      (digest) => {
        delete digest.segments;
      },
      (digest) => {
        delete digest.salt;
      },
      (digest) => {
        delete digest.digest;
      },
    ];
    for (const edit of edits) {
      await refused(
        forgeLuks2(luks2, { json: (json) => edit(json.digests['0'] as Record<string, unknown>) }),
        { type: 'luks' },
        noDigest,
      );
    }
  });

  it('a volume in re-encryption or needing features vault lacks is refused, naming them', async () => {
    await refused(
      forgeLuks2(luks2, {
        json: (json) => {
          json.config.requirements = { mandatory: ['online-reencrypt-v2', 'other'] };
        },
      }),
      { type: 'luks' },
      {
        code: 'USAGE',
        message:
          'this LUKS2 volume is being re-encrypted or needs features vault lacks (online-reencrypt-v2, other)',
        hint: 'finish the re-encryption with cryptsetup reencrypt first',
      },
    );
    await refused(
      forgeLuks2(luks2, {
        json: (json) => {
          json.keyslots['1'] = { type: 'reencrypt', kdf: {} };
        },
      }),
      { type: 'luks' },
      {
        code: 'USAGE',
        message: 'this LUKS2 volume is being re-encrypted or needs features vault lacks (reencrypt keyslot)',
      },
    );
  });

  it('keyslots of a kind vault does not read are skipped: the right passphrase cannot unlock', async () => {
    const edits: Array<(keyslot: Luks2Json['keyslots'][string]) => void> = [
      (keyslot) => {
        keyslot.type = 'luks1';
      },
      (keyslot) => {
        (keyslot.area as Record<string, unknown>).type = 'datashift';
      },
      (keyslot) => {
        (keyslot.af as Record<string, unknown>).type = 'luks2';
      },
      (keyslot) => {
        delete keyslot.af;
      },
      (keyslot) => {
        delete keyslot.area;
      },
      (keyslot) => {
        delete keyslot.kdf.salt;
      },
      (keyslot) => {
        keyslot.kdf.type = 'scrypt';
      },
    ];
    for (const edit of edits) {
      await refused(
        forgeLuks2(luks2, { json: (json) => edit(slot(json)) }),
        { type: 'luks' },
        CANNOT_UNLOCK_LUKS,
      );
    }
  });

  it('an Argon2 keyslot that needs more memory than there is says so before running', async () => {
    await refused(
      forgeLuks2(luks2, {
        json: (json) => {
          Object.assign(slot(json).kdf, { type: 'argon2id', memory: 2 ** 30, time: 4, cpus: 1 });
        },
      }),
      { type: 'luks' },
      {
        code: 'NEEDS_SYSTEM',
        message: 'this LUKS2 keyslot needs 1048576 MiB of memory for Argon2, more than is available',
        hint: 'free some memory, or open the volume on a machine with more',
      },
    );
  });

  it('keyslots held by tokens (FIDO2, TPM2): a wrong passphrase says so, only when every keyslot tried is one', async () => {
    const tokenOn = (slots: string[]) => (json: Luks2Json) => {
      json.tokens['0'] = { type: 'systemd-fido2', keyslots: slots };
    };
    const path = join(dir, 'token.luks2');
    await writeFile(path, forgeLuks2(luks2, { json: tokenOn(['0']) }));
    expect(await failure(open(path, { type: 'luks' }, 'wrong'))).toMatchObject({
      code: 'CANNOT_UNLOCK',
      message:
        'cannot unlock the LUKS2 volume: wrong passphrase or keyfile, and every keyslot belongs to a token (FIDO2, TPM2, ...)',
      hint: 'vault opens LUKS keyslots with a passphrase or keyfile; add one with cryptsetup luksAddKey',
    });
    const opened = await open(path, { type: 'luks' });
    await opened.close();
    // A second keyslot with a passphrase, or no keyslot tried at all: the usual message.
    const twoSlots = forgeLuks2(luks2, {
      json: (json) => {
        json.keyslots['1'] = JSON.parse(JSON.stringify(slot(json)));
        (json.digests['0'] as Record<string, unknown>).keyslots = ['0', '1'];
        tokenOn(['0'])(json);
      },
    });
    expect((await attempt(twoSlots, { type: 'luks' }, 'wrong')).error).toMatchObject(CANNOT_UNLOCK_LUKS);
    const noneTried = forgeLuks2(luks2, {
      json: (json) => {
        slot(json).type = 'luks1';
        tokenOn(['0'])(json);
      },
    });
    expect((await attempt(noneTried, { type: 'luks' }, 'wrong')).error).toMatchObject(CANNOT_UNLOCK_LUKS);
  });

  it('LUKS has no hidden volume to protect', async () => {
    const protectHidden = await Secret.fromInputs({ password: Buffer.from('x') }, { foreign: true });
    await refused(
      Buffer.from(luks2),
      { type: 'luks', protectHidden },
      {
        code: 'USAGE',
        reason: 'luks-protect-hidden',
        message: 'LUKS volumes have no hidden volume to protect',
        hint: 'open it without hidden-volume protection',
      },
    );
    protectHidden.wipe();
  });

  it('the newer header copy wins, and the difference is noted', async () => {
    const image = forgeLuks2(
      luks2,
      { binary: (copy) => copy.writeBigUInt64BE(copy.readBigUInt64BE(16) + 1n, 16) },
      ['secondary'],
    );
    const { volume } = await attempt(image, { type: 'luks' });
    expect(volume?.info().header).toBe('secondary');
    expect(volume?.warnings).toEqual(['the two LUKS2 header copies differ; the newer one was used']);
    await volume?.close();
  });

  it('a primary copy that fails one structural check gives way to the secondary', async () => {
    const damaged: Array<Parameters<typeof forgeLuks2>[1]> = [
      { binary: (copy) => copy.writeUInt16BE(3, 6) }, // version
      { binary: (copy) => copy.writeBigUInt64BE(4096n, 256) }, // where the copy says it is
      { text: 'null' },
      { text: '"a string"' },
      { text: '{"keyslots":' },
      { checksum: 'md5' }, // not a LUKS2 checksum algorithm
      { checksum: 'whirlpool' },
    ];
    for (const edit of damaged) {
      const { volume } = await attempt(forgeLuks2(luks2, edit, ['primary']), { type: 'luks' });
      expect(volume?.info().header).toBe('secondary');
      expect(volume?.warnings).toEqual(['the primary LUKS2 header is damaged; the secondary copy was used']);
      await volume?.close();
    }
  });

  it('a header checksummed with BLAKE2s-256 or SHA-512 is read', async () => {
    for (const checksum of ['blake2s-256', 'sha512']) {
      const { volume } = await attempt(forgeLuks2(luks2, { checksum }), { type: 'luks' });
      expect(volume?.info().header).toBe('primary');
      expect(volume?.warnings).toEqual([]);
      await volume?.close();
    }
  });

  it('a file cut inside the secondary copy: the primary still opens it as far as the data area', async () => {
    const path = join(dir, 'cut.luks2');
    await writeFile(path, luks2);
    await truncate(path, 24000); // the secondary binary header fits, its JSON area does not
    expect(await failure(open(path, { type: 'luks' }))).toMatchObject({
      code: 'IO',
      message: 'the LUKS2 data area starts beyond the end of the file (truncated)',
      hint: 'check the file; compare its size with the original',
    });
  });

  it('both copies damaged in a file that ends just past a secondary position: a clear error', async () => {
    const image = Buffer.alloc((4 << 20) + 2048);
    luks2.copy(image, 0, 0, 1 << 20);
    image[4096 + 10] = (image[4096 + 10] as number) ^ 0x20;
    image[16384 + 4096 + 10] = (image[16384 + 4096 + 10] as number) ^ 0x20;
    await refused(
      image,
      { type: 'luks' },
      {
        code: 'IO',
        message: 'both LUKS2 header copies are damaged (checksum or structure)',
        hint: 'restore a header backup with cryptsetup luksHeaderRestore',
      },
    );
  });

  it('a secondary copy at 32 KiB (larger metadata) is found when the primary is damaged', async () => {
    const path = await luksFormat(join(dir, 'meta32.luks2'), LUKS_BYTES, keyFile, [
      '--type',
      'luks2',
      '--luks2-metadata-size',
      '32k',
      '--luks2-keyslots-size',
      '256k',
      '--offset',
      '2048',
      ...FAST_PBKDF2,
    ]);
    const image = readFileSync(path);
    image[4096 + 10] = (image[4096 + 10] as number) ^ 0x20;
    const { volume } = await attempt(image, { type: 'luks' });
    expect(volume?.info().header).toBe('secondary');
    await volume?.close();
  });
});

// ---- VeraCrypt / TrueCrypt ----

const TC_BYTES = 1 << 20;
const VC = { type: 'veracrypt', pim: 1, hash: 'sha256' } as const;

async function tcrypt(spec: Partial<TcryptVolumeSpec> = {}): Promise<Buffer> {
  const path = join(dir, `tc-${written++}`);
  await writeTcryptVolume(path, {
    flavour: 'veracrypt',
    prf: 'sha256',
    iterations: 16000,
    password: Buffer.from(PASSWORD),
    fileSize: TC_BYTES,
    ...spec,
  });
  return readFileSync(path);
}

describe('forged VeraCrypt and TrueCrypt headers', () => {
  it('sector sizes: the field counts from header version 5 (0 means 512); others are refused', async () => {
    await refused(await tcrypt({ edit: (header) => header.writeUInt32BE(4096, 128) }), VC, {
      code: 'USAGE',
      message: 'this veracrypt volume has 4096-byte sectors',
      hint: 'vault opens volumes with 512-byte sectors',
    });
    for (const edit of [
      (header: Buffer) => header.writeUInt32BE(0, 128),
      (header: Buffer) => {
        header.writeUInt16BE(4, 68);
        header.writeUInt32BE(4096, 128);
      },
    ]) {
      const { error, volume } = await attempt(await tcrypt({ edit }), VC);
      expect(error).toBeNull();
      expect(volume?.info().sectorSize).toBe(512);
      await volume?.close();
    }
  });

  it('a system-encryption header is refused', async () => {
    await refused(await tcrypt({ edit: (header) => header.writeUInt32BE(1, 124) }), VC, {
      code: 'USAGE',
      message: 'this is a system-encryption header (an encrypted boot drive)',
      hint: 'vault opens file containers and non-system partitions',
    });
  });

  it('size fields that are zero or not whole 512-byte units are refused as damaged', async () => {
    const damaged = {
      code: 'IO',
      message: 'the veracrypt header has invalid size fields (damaged)',
      hint: 'try the backup header: VeraCrypt can restore it',
    };
    for (const [at, value] of [
      [100, 0n],
      [100, 1000n],
      [108, 131072n + 100n],
    ] as const) {
      await refused(await tcrypt({ edit: (header) => header.writeBigUInt64BE(value, at) }), VC, damaged);
    }
  });

  it('a volume longer than the file is refused, with both lengths; one up to the end of the file opens', async () => {
    await refused(await tcrypt({ edit: (header) => header.writeBigUInt64BE(BigInt(TC_BYTES), 100) }), VC, {
      code: 'IO',
      message: `the veracrypt volume is ${131072 + TC_BYTES} bytes long but the file has ${TC_BYTES} (truncated)`,
      hint: 'check the file; compare its size with the original',
    });
    const { volume } = await attempt(
      await tcrypt({ edit: (header) => header.writeBigUInt64BE(BigInt(TC_BYTES - 131072), 100) }),
      VC,
    );
    expect(volume?.size).toBe(TC_BYTES - 131072);
    await volume?.close();
  });

  it('a header holding equal XTS key halves is refused as forged', async () => {
    await refused(await tcrypt({ edit: (header) => header.copy(header, 256 + 32, 256, 256 + 32) }), VC, {
      code: 'IO',
      message: 'the veracrypt header holds an unusable key (damaged or forged)',
      hint: 'restore the header from a backup',
    });
  });

  it('a wrong magic or CRC does not open; the header CRC counts from version 4', async () => {
    const cannot = {
      code: 'CANNOT_UNLOCK',
      message:
        'cannot unlock the volume as VeraCrypt: wrong password, keyfile, cost level or PIM, or not such a volume',
    };
    await refused(await tcrypt({ edit: (header) => header.write('VERX', 64, 'latin1') }), VC, cannot);
    await refused(await tcrypt({ badCrc: 'keys' }), VC, cannot);
    await refused(await tcrypt({ badCrc: 'header' }), VC, cannot);
    const { error, volume } = await attempt(
      await tcrypt({ badCrc: 'header', edit: (header) => header.writeUInt16BE(3, 68) }),
      VC,
    );
    expect(error).toBeNull();
    expect(volume?.info().formatVersion).toBe(3);
    await volume?.close();
  });

  it('TrueCrypt opens only TRUE headers; a VeraCrypt header at TrueCrypt costs is not one', async () => {
    const image = await tcrypt({ prf: 'sha512', iterations: 1000 });
    await refused(
      image,
      { type: 'truecrypt', hash: 'sha512' },
      {
        code: 'CANNOT_UNLOCK',
        message:
          'cannot unlock the volume as TrueCrypt: wrong password, keyfile, cost level or PIM, or not such a volume',
      },
    );
  });

  it('a hidden volume is as long as its hidden-size field; its backup header opens it when the first is damaged', async () => {
    const hiddenBytes = 128 * 1024;
    const image = await tcrypt({
      hidden: {
        prf: 'sha256',
        iterations: 16000,
        password: Buffer.from('hidden'),
        dataSize: hiddenBytes,
        edit: (header) => header.writeBigUInt64BE(BigInt(hiddenBytes * 2), 100),
      },
    });
    const first = await attempt(image, VC, 'hidden');
    expect(first.volume?.info()).toMatchObject({ kind: 'hidden', header: 'primary', dataSize: hiddenBytes });
    await first.volume?.close();
    image[65536 + 100] = (image[65536 + 100] as number) ^ 0xff;
    const backup = await attempt(image, VC, 'hidden');
    expect(backup.volume?.info()).toMatchObject({ kind: 'hidden', header: 'backup', dataSize: hiddenBytes });
    expect(backup.volume?.warnings).toEqual([
      'the hidden header at the start is damaged; the backup header was used',
    ]);
    await backup.volume?.close();
  });

  it('protecting a hidden volume with the outer secret: the hidden headers alone are tried', async () => {
    const image = await tcrypt({
      hidden: { prf: 'sha256', iterations: 16000, password: Buffer.from('hidden'), dataSize: 128 * 1024 },
    });
    const path = join(dir, 'protect-self.hc');
    await writeFile(path, image);
    const outer = await Secret.fromInputs({ password: Buffer.from(PASSWORD) }, { foreign: true });
    expect(await failure(open(path, { ...VC, protectHidden: outer }))).toMatchObject({
      code: 'CANNOT_UNLOCK',
      reason: 'protect-hidden-unlock',
      hint: 'give the hidden volume secret as the second secret, or open it without protection',
    });
    const hidden = await Secret.fromInputs({ password: Buffer.from('hidden') }, { foreign: true });
    expect(await failure(open(path, { ...VC, protectHidden: hidden }, 'hidden'))).toMatchObject({
      code: 'USAGE',
      message: 'the first secret opens a hidden volume; protection is for mounting the outer volume',
      hint: 'give the outer volume secret first, then the hidden one',
    });
    outer.wipe();
    hidden.wipe();
    expect(readFileSync(path).equals(image)).toBe(true);
  });

  it('protecting a hidden volume whose header is damaged: the damage is reported as itself', async () => {
    const image = await tcrypt({
      hidden: {
        prf: 'sha256',
        iterations: 16000,
        password: Buffer.from('hidden'),
        dataSize: 128 * 1024,
        edit: (header) => header.writeBigUInt64BE(1000n, 92),
      },
    });
    const path = join(dir, 'protect-damaged.hc');
    await writeFile(path, image);
    const hidden = await Secret.fromInputs({ password: Buffer.from('hidden') }, { foreign: true });
    expect(await failure(open(path, { ...VC, protectHidden: hidden }))).toMatchObject({
      code: 'IO',
      message: 'the veracrypt header has invalid size fields (damaged)',
    });
    hidden.wipe();
    expect(readFileSync(path).equals(image)).toBe(true);
  });

  it("passwords at the formats' limits open: 128 bytes for VeraCrypt, 64 (with the 64-byte keyfile pool) and 64 for TrueCrypt", async () => {
    const keyfile = Buffer.from('keyfile bytes');
    const keyPath = join(dir, 'limit.key');
    await writeFile(keyPath, keyfile);
    const cases: Array<[Partial<TcryptVolumeSpec>, VolumeOpenOptions, string, string[]]> = [
      [{ password: Buffer.from('v'.repeat(128)) }, VC, 'v'.repeat(128), []],
      [{ password: Buffer.from('w'.repeat(64)), keyfiles: [keyfile] }, VC, 'w'.repeat(64), [keyPath]],
      [
        { flavour: 'truecrypt', prf: 'sha512', iterations: 1000, password: Buffer.from('t'.repeat(64)) },
        { type: 'truecrypt', hash: 'sha512' },
        't'.repeat(64),
        [],
      ],
    ];
    for (const [spec, options, password, keyfiles] of cases) {
      const path = join(dir, `limit-${written++}`);
      await writeFile(path, await tcrypt(spec));
      const secret = await Secret.fromInputs(
        { password: Buffer.from(password), keyfiles },
        { foreign: true },
      );
      const volume = (await openVolume(path, secret, options)) as ForeignVolume;
      secret.wipe();
      await volume.close();
    }
  });

  it('unlockTcrypt itself names the format it tried', async () => {
    const tiny = join(dir, 'tiny.hc');
    await writeFile(tiny, Buffer.alloc(131072 + 511, 1));
    const path = join(dir, 'named.hc');
    await writeFile(path, await tcrypt());
    const secret = await Secret.fromInputs({ password: Buffer.from('wrong') }, { foreign: true });
    for (const [target, flavour, name] of [
      [tiny, 'veracrypt', 'VeraCrypt'],
      [path, 'veracrypt', 'VeraCrypt'],
      [tiny, 'truecrypt', 'TrueCrypt'],
    ] as const) {
      const file = await openContainerFile(target, 'read');
      const error = await failure(unlockTcrypt(file, secret, { flavour, pim: 1, hash: 'sha256' }));
      await file.close();
      expect(error).toMatchObject({
        code: 'CANNOT_UNLOCK',
        message: `cannot unlock the volume as ${name}: wrong password, keyfile, cost level or PIM, or not such a volume`,
      });
    }
    secret.wipe();
  });

  it('a file too small for a header and a data area: cannot unlock, as the format named', async () => {
    await refused(Buffer.alloc(131072 + 511, 1), VC, {
      code: 'CANNOT_UNLOCK',
      message:
        'cannot unlock the volume as VeraCrypt: wrong password, keyfile, cost level or PIM, or not such a volume',
    });
  });
});
