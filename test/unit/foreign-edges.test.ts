// The foreign volumes' edges, for mutation testing (scripts/mutation-area.mjs foreign), each in well
// under a second. ForeignVolume on volumes built here (random sectors under a known key, no KDF): the
// key handed to it is wiped, the JavaScript data path at every partial-sector shape against dm-crypt's
// rules spelled out with node:crypto, the order of overlapping writes, flush/close durability and key
// wipes, and which volumes the native data path may serve. Then the cheap refusals of openVolume and
// forged LUKS1/LUKS2 and VeraCrypt headers (cryptsetup's and the test writer's volumes, patched).

import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVault } from '../../src/container/create.js';
import { type OpenContainerFile, openContainerFile } from '../../src/container/file.js';
import { ForeignVolume } from '../../src/container/foreign-volume.js';
import type { ForeignUnlock } from '../../src/container/formats/foreign.js';
import { LUKS_MAGIC } from '../../src/container/formats/luks-magic.js';
import { Secret } from '../../src/container/secret.js';
import { openVolume, type VolumeOpenOptions } from '../../src/container/volume.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';
import { AES_CBC_ESSIV_SHA256, AES_XTS_PLAIN64, type SectorCipherSuite } from '../../src/crypto/suites.js';
import { dmCrypt, pattern } from '../tools/foreign-fixtures.js';
import { gate, type RecordingFile, recordingFile } from '../tools/recording-file.js';
import { refusal } from '../tools/refusal.js';
import { writeTcryptVolume } from '../tools/tcrypt-writer.js';
import { allZero } from '../tools/zero.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-foreign-edges-'));
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

// ---- ForeignVolume over a volume built here ----

interface Built {
  volume: ForeignVolume;
  file: RecordingFile;
  path: string;
  key: Buffer;
  unlock: ForeignUnlock;
  dataOffset: number;
  /** The cleartext as it should be: the initial sectors decrypted independently, then every write. */
  model: Buffer;
  /** The whole data area decrypted independently, from the file as it is now. */
  decrypted(): Buffer;
}

interface BuildOptions {
  suite?: SectorCipherSuite;
  keyBytes?: number;
  sectorBytes?: number;
  ivUnitBytes?: number;
  ivOffset?: number;
  dataSize?: number;
  readOnly?: boolean;
  preserveTimestamps?: boolean;
  protectedRange?: { start: number; end: number };
  withFd?: boolean;
  identity?: { atimeMs: number; mtimeMs: number };
  key?: Buffer;
}

let built = 0;

/** A file of random bytes read as a foreign volume's data area (from 4096) under a random key. */
async function build(options: BuildOptions = {}): Promise<Built> {
  const suite = options.suite ?? AES_XTS_PLAIN64;
  const sectorBytes = options.sectorBytes ?? 512;
  const ivUnitBytes = options.ivUnitBytes ?? 512;
  const ivOffset = options.ivOffset ?? 0;
  const dataSize = options.dataSize ?? 10 * sectorBytes;
  const dataOffset = 4096;
  const key = options.key ?? randomBytes(options.keyBytes ?? 64);
  const path = join(dir, `built-${built++}`);
  await writeFile(path, randomBytes(dataOffset + dataSize));
  const decrypted = () =>
    dmCrypt(
      true,
      readFileSync(path).subarray(dataOffset, dataOffset + dataSize),
      key,
      suite.id,
      sectorBytes,
      ivOffset,
      ivUnitBytes,
    );
  const model = decrypted();
  const real = await openContainerFile(path, options.readOnly ? 'read' : 'write');
  const file = recordingFile(real, options.withFd === false ? { withFd: false } : {});
  const stat = await real.identity();
  const unlock: ForeignUnlock = {
    format: 'luks2',
    version: 2,
    masterKey: Buffer.from(key),
    suite,
    layout: { sectorBytes, ivUnitBytes, ivOffset },
    dataOffset,
    dataSize,
    kdf: { type: 'pbkdf2', hash: 'sha256', iterations: 1000 },
    kind: 'normal',
    header: 'primary',
    keyslot: 0,
    notes: ['a note'],
  };
  const volume = new ForeignVolume(file, unlock, dataOffset + dataSize, {
    readOnly: options.readOnly ?? false,
    preserveTimestamps: options.preserveTimestamps ?? false,
    identity: { dev: stat.dev, ino: stat.ino, ...(options.identity ?? stat) },
    ...(options.protectedRange ? { protectedRange: options.protectedRange } : {}),
  });
  return { volume, file, path, key, unlock, dataOffset, model, decrypted };
}

async function write(target: Built, plain: Buffer, offset: number): Promise<void> {
  await target.volume.writeAt(plain, offset);
  plain.copy(target.model, offset);
}

const ops = (file: RecordingFile) => file.calls.map((call) => call.op);

const SHAPES: Array<{ name: string; options: BuildOptions }> = [
  {
    name: 'AES-256-XTS, 512-byte sectors',
    options: { suite: AES_XTS_PLAIN64, keyBytes: 64, sectorBytes: 512 },
  },
  {
    name: 'AES-128-XTS, 4096-byte sectors, IV offset 7',
    options: { suite: AES_XTS_PLAIN64, keyBytes: 32, sectorBytes: 4096, ivOffset: 7 },
  },
  {
    name: 'AES-256-CBC-ESSIV, 512-byte sectors',
    options: { suite: AES_CBC_ESSIV_SHA256, keyBytes: 32, sectorBytes: 512 },
  },
  {
    name: 'AES-128-CBC-ESSIV, 4096-byte sectors',
    options: { suite: AES_CBC_ESSIV_SHA256, keyBytes: 16, sectorBytes: 4096 },
  },
];

describe('ForeignVolume: the key it is handed', () => {
  it('wipes the unlock master key at once (the cipher and the native path keep their own copies)', async () => {
    for (const suite of [AES_XTS_PLAIN64, AES_CBC_ESSIV_SHA256]) {
      const target = await build({ suite, keyBytes: 32 });
      expect(allZero(target.unlock.masterKey)).toBe(true);
      expect(target.unlock.masterKey.length).toBe(32);
      // The cipher still has the key: the sectors read back as dm-crypt decrypts them.
      const back = Buffer.alloc(512);
      await target.volume.readAt(back, 512);
      expect(back.equals(target.model.subarray(512, 1024))).toBe(true);
      await target.volume.close();
    }
  });

  it('wipes the master key also when the cipher refuses it (equal XTS halves)', async () => {
    const half = randomBytes(32);
    const key = Buffer.concat([half, half]);
    const path = join(dir, 'refused-key');
    await writeFile(path, Buffer.alloc(8192));
    const file = await openContainerFile(path, 'write');
    const stat = await file.identity();
    const unlock: ForeignUnlock = {
      format: 'veracrypt',
      version: 5,
      masterKey: Buffer.from(key),
      suite: AES_XTS_PLAIN64,
      layout: { sectorBytes: 512, ivUnitBytes: 512, ivOffset: 8 },
      dataOffset: 4096,
      dataSize: 4096,
      kdf: { type: 'pbkdf2', hash: 'sha512', iterations: 1000 },
      kind: 'normal',
      header: 'primary',
      keyslot: null,
      notes: [],
    };
    expect(
      () =>
        new ForeignVolume(file, unlock, 8192, {
          readOnly: false,
          preserveTimestamps: false,
          identity: stat,
        }),
    ).toThrow();
    expect(allZero(unlock.masterKey)).toBe(true);
    await file.close();
  });

  it('close wipes the native path key, destroys the cipher and closes the file, once', async () => {
    const target = await build({ keyBytes: 64 });
    const raw = target.volume.rawAccess();
    expect(raw).not.toBeNull();
    const rawKey = raw?.key as Buffer;
    expect(rawKey.equals(target.key)).toBe(true);
    await target.volume.close();
    expect(allZero(rawKey)).toBe(true);
    expect(ops(target.file)).toEqual(['sync', 'close']);
    await target.volume.close(); // a second close does nothing
    expect(ops(target.file)).toEqual(['sync', 'close']);
    const attempts: Array<() => unknown> = [
      () => target.volume.rawAccess(),
      () => target.volume.readAt(Buffer.alloc(1), 0),
      () => target.volume.flush(),
    ];
    for (const attempt of attempts) {
      const error = await failure(Promise.resolve().then(attempt));
      expect(error).toMatchObject({ code: 'IO', message: 'the volume is closed', hint: 'open it again' });
    }
  });
});

describe('ForeignVolume: the native data path only for what the addon serves', () => {
  const MAX = Number.MAX_SAFE_INTEGER;
  const cases: Array<{ name: string; options: BuildOptions; served: boolean }> = [
    { name: 'AES-256-XTS, 512-byte sectors', options: { keyBytes: 64 }, served: true },
    { name: 'AES-128-XTS, 4096-byte sectors', options: { keyBytes: 32, sectorBytes: 4096 }, served: true },
    { name: 'CBC-ESSIV', options: { suite: AES_CBC_ESSIV_SHA256, keyBytes: 32 }, served: false },
    { name: 'no file descriptor', options: { withFd: false }, served: false },
    { name: '256-byte sectors', options: { sectorBytes: 256, ivUnitBytes: 256 }, served: false },
    { name: '128 KiB sectors', options: { sectorBytes: 131072, dataSize: 131072 }, served: false },
    { name: '1536-byte sectors', options: { sectorBytes: 1536 }, served: false },
    {
      name: 'a data area that is not whole sectors',
      options: { sectorBytes: 4096, dataSize: 2 * 4096 + 512 },
      served: false,
    },
    {
      name: 'tweaks that stay safe integers to the end',
      options: { ivOffset: MAX - 1000, dataSize: 65536 },
      served: true,
    },
    {
      name: 'tweaks beyond the safe integers at the end',
      options: { ivOffset: MAX - 100, dataSize: 65536 },
      served: false,
    },
  ];
  for (const { name, options, served } of cases) {
    it(`${name}: ${served ? 'served natively' : 'JavaScript only'}`, async () => {
      const target = await build(options);
      const raw = target.volume.rawAccess();
      if (served) {
        expect(raw).toEqual({
          fd: target.file.fd,
          dataOffset: 4096,
          key: target.key,
          sectorSize: options.sectorBytes ?? 512,
          ivUnitBytes: 512,
          ivOffset: options.ivOffset ?? 0,
          protectedRange: null,
        });
      } else {
        expect(raw).toBeNull();
      }
      await target.volume.close();
    });
  }

  it('identity, size and warnings come from the settings and the unlock', async () => {
    const target = await build({ dataSize: 8192 });
    const stat = statSync(target.path);
    expect(target.volume.identity).toEqual({ dev: stat.dev, ino: stat.ino });
    expect(target.volume.size).toBe(8192);
    expect(target.volume.warnings).toEqual(['a note']);
    expect(target.volume.info()).toMatchObject({ fileSize: 4096 + 8192, dataSize: 8192, readOnly: false });
    await target.volume.close();
  });
});

describe('ForeignVolume: the JavaScript data path at every partial-sector shape', () => {
  for (const { name, options } of SHAPES) {
    it(`${name}: writes and reads at any offset match dm-crypt's own decryption`, async () => {
      const target = await build(options);
      const s = options.sectorBytes as number;
      const size = target.volume.size;
      const writes: Array<[number, number]> = [
        [100, 50], // inside one sector
        [s + 100, s - 100], // partial head, aligned tail
        [3 * s, 100], // aligned head, partial tail
        [4 * s + 100, s + 100], // partial head and tail in the next sector
        [6 * s - 1, 2], // one byte each side of a boundary
        [7 * s, 2 * s], // whole sectors
        [size - 1, 1], // the last byte
      ];
      for (const [index, [offset, length]] of writes.entries()) {
        await write(target, pattern(length, index + 1), offset);
      }
      await write(target, Buffer.alloc(0), 5); // nothing
      const reads: Array<[number, number]> = [
        [0, size],
        [0, s],
        [s, 2 * s],
        [0, 100], // aligned start, partial end
        [2 * s, s + 50],
        [7, 3],
        [s - 5, 10],
        [s + 7, 3 * s],
        [size - 100, 100], // ends at the end of the volume
        [size - s - 3, s + 3],
        [3, 0],
      ];
      for (const [offset, length] of reads) {
        const plain = Buffer.alloc(length);
        await target.volume.readAt(plain, offset);
        expect(plain.equals(target.model.subarray(offset, offset + length)), `read ${offset}+${length}`).toBe(
          true,
        );
      }
      await target.volume.close();
      expect(target.decrypted().equals(target.model)).toBe(true);
      // Nothing outside the data area was written.
      for (const call of target.file.calls) {
        if (call.op === 'write') expect(call.position).toBeGreaterThanOrEqual(4096);
      }
    });
  }

  it('a failed read of the tail sector leaves no cleartext of the head sector in memory, and writes nothing', async () => {
    const target = await build({ suite: AES_CBC_ESSIV_SHA256, keyBytes: 32 });
    const before = readFileSync(target.path);
    let reads = 0;
    target.file.before = (call) => {
      if (call.op === 'read' && ++reads === 2) throw new Error('EIO');
    };
    await expect(target.volume.writeAt(Buffer.alloc(612, 1), 100)).rejects.toThrow('EIO');
    const head = target.file.calls[0];
    expect(head).toMatchObject({ op: 'read', position: 4096 });
    expect(head?.buffer?.length).toBe(512);
    expect(allZero(head?.buffer)).toBe(true);
    expect(ops(target.file)).toEqual(['read', 'read']);
    target.file.before = null;
    await target.volume.close();
    expect(readFileSync(target.path).equals(before)).toBe(true);
  });
});

describe('ForeignVolume: writes that share a sector run in arrival order', () => {
  const S = 512;
  async function overlapping(first: [number, number], second: [number, number], waits: boolean) {
    const target = await build({ suite: AES_CBC_ESSIV_SHA256, keyBytes: 32 });
    const a = pattern(first[1], 1);
    const b = pattern(second[1], 2);
    const p1 = target.volume.writeAt(a, first[0]);
    const started = target.file.calls.length;
    const p2 = target.volume.writeAt(b, second[0]);
    // The second write starts its I/O at once only when it shares no sector with the first.
    expect(target.file.calls.length > started).toBe(!waits);
    await Promise.all([p1, p2]);
    a.copy(target.model, first[0]);
    b.copy(target.model, second[0]);
    await target.volume.close();
    expect(target.decrypted().equals(target.model)).toBe(true);
  }

  it("a later write whose first sector is the earlier one's last waits for it", async () => {
    await overlapping([100, 600], [1000, 300], true); // sectors 0-1, then 1-2
  });

  it("a later write whose last sector is the earlier one's first waits for it", async () => {
    await overlapping([1000, 300], [100, 600], true); // sectors 1-2, then 0-1
  });

  it('two partial writes into one sector both land', async () => {
    await overlapping([100, 50], [300, 50], true);
  });

  it('writes to other sectors do not wait, before or after', async () => {
    await overlapping([100, 600], [3 * S + 10, 10], false); // sectors 0-1, then 3
    await overlapping([3 * S + 10, 10], [100, 600], false); // sector 3, then 0-1
  });

  it('close waits for a write in flight, then syncs, then closes the file', async () => {
    const target = await build({ suite: AES_CBC_ESSIV_SHA256, keyBytes: 32 });
    const plain = pattern(300, 5);
    const writing = target.volume.writeAt(plain, 100);
    const closing = target.volume.close();
    await Promise.all([writing, closing]);
    plain.copy(target.model, 100);
    expect(ops(target.file)).toEqual(['read', 'write', 'sync', 'close']);
    expect(target.decrypted().equals(target.model)).toBe(true);
  });

  it('a read or write called while close waits for a write in flight is refused: the volume is closed', async () => {
    const target = await build({ suite: AES_CBC_ESSIV_SHA256, keyBytes: 32 });
    const held = gate();
    target.file.before = (call) => (call.op === 'write' ? held.wait : undefined);
    const writing = target.volume.writeAt(pattern(512, 3), 0);
    const closing = target.volume.close();
    const lateWrite = refusal(target.volume.writeAt(pattern(512, 4), 512));
    const lateRead = refusal(target.volume.readAt(Buffer.alloc(512), 0));
    held.open();
    await Promise.all([writing, closing]);
    for (const late of [await lateWrite, await lateRead]) {
      expect(late).toMatchObject({ code: 'IO', message: 'the volume is closed', hint: 'open it again' });
    }
    expect(ops(target.file)).toEqual(['write', 'sync', 'close']);
  });
});

describe('ForeignVolume: durability and refusals', () => {
  it('flush syncs a read-write volume; a read-only one neither syncs nor writes', async () => {
    const target = await build();
    await target.volume.flush();
    expect(ops(target.file)).toEqual(['sync']);
    await target.volume.close();
    const readOnly = await build({ readOnly: true });
    const before = readFileSync(readOnly.path);
    await readOnly.volume.flush();
    const refused = await failure(readOnly.volume.writeAt(Buffer.alloc(512, 1), 0));
    expect(refused).toMatchObject({
      code: 'IO',
      message: 'the volume is open read-only',
      hint: 'open it read-write',
      reason: 'read-only',
    });
    await readOnly.volume.close();
    expect(ops(readOnly.file)).toEqual(['close']);
    expect(readFileSync(readOnly.path).equals(before)).toBe(true);
  });

  it('the file times are put back on close only when asked, and never for a read-only volume', async () => {
    const times = { atimeMs: 1_500_000_000_000, mtimeMs: 1_600_000_000_000 };
    const kept = await build({ preserveTimestamps: true, identity: times });
    await kept.volume.writeAt(Buffer.alloc(512, 1), 0);
    await kept.volume.close();
    expect(ops(kept.file)).toEqual(['write', 'sync', 'setTimes', 'close']);
    expect(statSync(kept.path).mtimeMs).toBe(times.mtimeMs);
    const touched = await build({ identity: times });
    await touched.volume.writeAt(Buffer.alloc(512, 1), 0);
    await touched.volume.close();
    expect(ops(touched.file)).toEqual(['write', 'sync', 'close']);
    expect(statSync(touched.path).mtimeMs).not.toBe(times.mtimeMs);
    const readOnly = await build({ readOnly: true, preserveTimestamps: true, identity: times });
    await readOnly.volume.close();
    expect(ops(readOnly.file)).toEqual(['close']);
  });

  it('an empty write inside the protected hidden range does not trip the protection', async () => {
    const target = await build({ protectedRange: { start: 1024, end: 2048 } });
    await target.volume.writeAt(Buffer.alloc(0), 1500);
    expect(target.volume.protectionTripped).toBe(false);
    await write(target, pattern(512, 3), 0);
    await target.volume.close();
    expect(target.decrypted().equals(target.model)).toBe(true);
  });
});

// ---- openVolume: what is tried, and the cheap refusals ----

describe('openVolume: which formats are tried, and what a failure says', () => {
  const CANNOT = (names: string) =>
    `cannot unlock the volume as ${names}: wrong password, keyfile, cost level or PIM, or not such a volume`;

  async function attemptOpen(path: string, options: VolumeOpenOptions, password = 'not it') {
    const secret = await Secret.fromInputs({ password: Buffer.from(password) }, { foreign: true });
    try {
      return await failure(openVolume(path, secret, { costLevel: MIN_COST_LEVEL, ...options }));
    } finally {
      secret.wipe();
    }
  }

  it('a file too small for VeraCrypt or TrueCrypt: the formats tried follow --type, --hash and --pim', async () => {
    const path = join(dir, 'tiny');
    await writeFile(path, Buffer.alloc(100_000, 3));
    const cases: Array<[VolumeOpenOptions, string]> = [
      [{}, 'vault, TrueCrypt, VeraCrypt'],
      [{ hash: 'sha512' }, 'TrueCrypt, VeraCrypt'],
      [{ hash: 'ripemd160' }, 'TrueCrypt, VeraCrypt'],
      [{ type: 'truecrypt' }, 'TrueCrypt'],
      [{ type: 'veracrypt' }, 'VeraCrypt'],
      [{ hash: 'sha256' }, 'VeraCrypt'],
      [{ hash: 'blake2s-256' }, 'VeraCrypt'],
      [{ hash: 'argon2' }, 'VeraCrypt'],
      [{ pim: 1 }, 'VeraCrypt'],
    ];
    for (const [options, names] of cases) {
      expect(await attemptOpen(path, options), JSON.stringify(options)).toMatchObject({
        code: 'CANNOT_UNLOCK',
        reason: 'foreign-cannot-unlock',
        message: CANNOT(names),
      });
    }
  });

  it('a file with the LUKS magic is tried as LUKS only when LUKS is not ruled out', async () => {
    const path = join(dir, 'magic-only');
    await writeFile(path, Buffer.concat([LUKS_MAGIC, Buffer.alloc(100_000)]));
    expect(await attemptOpen(path, {})).toMatchObject({
      code: 'IO',
      message: 'both LUKS2 header copies are damaged (checksum or structure)',
    });
    expect(await attemptOpen(path, { type: 'veracrypt', pim: 1 })).toMatchObject({
      message: CANNOT('VeraCrypt'),
    });
  });

  it('every file the attempts opened is closed again', async () => {
    const path = join(dir, 'tiny-closed');
    await writeFile(path, Buffer.concat([LUKS_MAGIC, Buffer.alloc(100_000)]));
    for (const options of [{}, { type: 'luks' }, { type: 'veracrypt', pim: 1 }] as VolumeOpenOptions[]) {
      const opened: RecordingFile[] = [];
      const openFile: OpenContainerFile = async (name, mode) => {
        const file = recordingFile(await openContainerFile(name, mode));
        opened.push(file);
        return file;
      };
      expect(await attemptOpen(path, { ...options, openFile })).toHaveProperty('code');
      expect(opened.length).toBeGreaterThan(0);
      for (const file of opened) expect(file.calls.at(-1)?.op).toBe('close');
    }
  });

  it('a truncated vault opened by the secret is reported as such, not tried as other formats', async () => {
    const path = join(dir, 'short.vault');
    const make = await Secret.fromInputs({ password: Buffer.from('vault pw') });
    await createVault(path, { fileSize: 2 << 20, secret: make, costLevel: MIN_COST_LEVEL, quick: true });
    make.wipe();
    await truncate(path, 1 << 20);
    const error = await attemptOpen(path, {}, 'vault pw');
    expect(error).toMatchObject({ code: 'IO', reason: 'truncated' });
  });

  it('settings that do not fit the named format are refused before any file is read', async () => {
    const path = join(dir, 'tiny-settings');
    await writeFile(path, Buffer.alloc(100_000, 5));
    const cases: Array<[VolumeOpenOptions, Record<string, unknown>]> = [
      [
        { type: 'luks', pim: 1 },
        {
          code: 'USAGE',
          reason: 'luks-hash-pim',
          message: 'a hash and a PIM are settings of VeraCrypt and TrueCrypt volumes',
          hint: 'leave them out for LUKS: its header names the hash',
        },
      ],
      [
        { type: 'truecrypt', hash: 'argon2' },
        {
          code: 'USAGE',
          reason: 'truecrypt-argon2',
          message: "the argon2 hash is VeraCrypt's Argon2id; TrueCrypt volumes use PBKDF2 only",
          hint: 'give no hash, or open it as a VeraCrypt volume',
        },
      ],
      [
        { type: 'truecrypt', pim: 3 },
        {
          code: 'USAGE',
          reason: 'truecrypt-pim',
          message: 'a PIM is a VeraCrypt setting; TrueCrypt volumes have none',
          hint: 'give no PIM',
        },
      ],
    ];
    for (const [options, expected] of cases) expect(await attemptOpen(path, options)).toMatchObject(expected);
    // --hash argon2 with another type (or none) is no TrueCrypt refusal.
    expect(await attemptOpen(path, { type: 'veracrypt', hash: 'argon2', pim: 1 })).toMatchObject({
      code: 'CANNOT_UNLOCK',
    });
  });

  it('file times: put back on close only with preserveTimestamps', async () => {
    const path = join(dir, 'times.hc');
    await writeTcryptVolume(path, {
      flavour: 'veracrypt',
      prf: 'sha256',
      iterations: 16000,
      password: Buffer.from('pw'),
      fileSize: 1 << 20,
    });
    const old = new Date('2020-01-02T03:04:05Z');
    for (const preserveTimestamps of [undefined, true]) {
      await utimes(path, old, old);
      const secret = await Secret.fromInputs({ password: Buffer.from('pw') }, { foreign: true });
      const options = { type: 'veracrypt', pim: 1, hash: 'sha256' } as const;
      const volume = (await openVolume(path, secret, {
        ...options,
        ...(preserveTimestamps ? { preserveTimestamps } : {}),
      })) as ForeignVolume;
      secret.wipe();
      await volume.writeAt(Buffer.alloc(512, 9), 0);
      await volume.close();
      expect(statSync(path).mtimeMs === old.getTime()).toBe(preserveTimestamps === true);
    }
  });
});
