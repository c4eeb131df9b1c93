// The FUSE 3 addon's request handler (native/fuse3.c) without FUSE: reads and writes at random offsets
// and lengths, unaligned and past the end, against an in-memory model of the cleartext; the container
// file must then hold exactly the model encrypted by the independent node:crypto XTS, and nothing
// outside the data area may change. Also: read-only, hidden-volume protection, concurrent writers
// that share sectors (read-modify-write under the sector lock), and option checks.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AES_XTS_PLAIN64 } from '../../src/crypto/suites.js';
import { createXts } from '../../src/crypto/xts.js';
import { fuse3, MAX_REQUEST, type NativeHandle, type VolumeOptions } from '../../src/fuse/fuse3.js';

const addon = fuse3();
const dir = mkdtempSync(join(tmpdir(), 'vault-fuse3-handler-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECTOR = 4096;
const EIO = -5;
const ENOSPC = -28;
const EROFS = -30;

/** A small deterministic PRNG (mulberry32): the same seed gives the same operations. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bytes(random: () => number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(random() * 256);
  return out;
}

interface Setup {
  path: string;
  fd: number;
  handle: NativeHandle;
  before: Buffer;
  options: VolumeOptions;
}

/** A host file: `dataOffset` bytes of header, the data area, and a trailer; all random. */
function setup(name: string, options: Omit<VolumeOptions, 'fd'>, random: () => number): Setup {
  const path = join(dir, name);
  const before = bytes(random, options.dataOffset + options.size + 3 * SECTOR);
  writeFileSync(path, before);
  const fd = openSync(path, options.readOnly ? 'r' : 'r+');
  const full = { ...options, fd };
  const handle = addon.openVolume(full);
  return { path, fd, handle, before, options: full };
}

function finish(s: Setup): Buffer {
  addon.closeVolume(s.handle);
  closeSync(s.fd);
  return readFileSync(s.path);
}

/** Model-based run: returns the model of the cleartext after `operations` random reads and writes. */
function exercise(s: Setup, model: Buffer, random: () => number, operations: number): void {
  const size = s.options.size;
  for (let i = 0; i < operations; i++) {
    // Offsets anywhere, also past the end; lengths from 0 to 2.5 MiB (more than one request buffer).
    const where = random();
    const offset =
      where < 0.1
        ? size - Math.floor(random() * 3 * SECTOR)
        : where < 0.5
          ? SECTOR * Math.floor(random() * (size / SECTOR + 1))
          : Math.floor(random() * (size + SECTOR));
    const pick = random();
    const length =
      pick < 0.4
        ? Math.floor(random() * 3 * SECTOR)
        : pick < 0.8
          ? SECTOR * Math.floor(random() * 64)
          : Math.floor(random() * 2.5 * MAX_REQUEST);
    const available = Math.max(0, Math.min(length, size - offset));
    if (random() < 0.5) {
      const got = addon.volumeRead(s.handle, offset, length);
      expect(Buffer.isBuffer(got), `read ${offset}+${length}`).toBe(true);
      expect(
        (got as Buffer).equals(model.subarray(offset, offset + available)),
        `read ${offset}+${length}`,
      ).toBe(true);
    } else {
      const data = bytes(random, length);
      const result = addon.volumeWrite(s.handle, offset, data);
      if (offset >= size) expect(result, `write ${offset}+${length}`).toBe(ENOSPC);
      else {
        expect(result, `write ${offset}+${length}`).toBe(available);
        data.copy(model, offset, 0, available);
      }
    }
  }
}

describe('FUSE 3 request handler (native/fuse3.c)', () => {
  it('encrypted: random reads and writes match the model; the file holds the model in XTS, nothing else changed', () => {
    const random = prng(1);
    const key = bytes(random, 64);
    const dataOffset = 3 * SECTOR + 512; // not sector aligned in the host file
    const size = 700 * SECTOR;
    const s = setup('xts.img', { dataOffset, size, sectorSize: SECTOR, readOnly: false, key }, random);
    const reference = createXts(key, { implementation: 'node-crypto' });
    const model = Buffer.from(s.before.subarray(dataOffset, dataOffset + size));
    reference.decrypt(model, 0);
    exercise(s, model, random, 400);
    const after = finish(s);
    const expected = Buffer.from(model);
    reference.encrypt(expected, 0);
    reference.destroy();
    expect(after.length).toBe(s.before.length);
    expect(after.subarray(0, dataOffset).equals(s.before.subarray(0, dataOffset))).toBe(true);
    expect(after.subarray(dataOffset, dataOffset + size).equals(expected)).toBe(true);
    expect(after.subarray(dataOffset + size).equals(s.before.subarray(dataOffset + size))).toBe(true);
  });

  it('encrypted, data area aligned in the host file: large reads bypass the host cache and agree', () => {
    const random = prng(7);
    const key = bytes(random, 64);
    const dataOffset = 32 * SECTOR;
    const size = 700 * SECTOR;
    const s = setup(
      'xts-aligned.img',
      { dataOffset, size, sectorSize: SECTOR, readOnly: false, key },
      random,
    );
    const reference = createXts(key, { implementation: 'node-crypto' });
    const model = Buffer.from(s.before.subarray(dataOffset, dataOffset + size));
    reference.decrypt(model, 0);
    exercise(s, model, random, 300);
    // O_DIRECT where the host filesystem has it (tmpfs before Linux 6.6 does not: then none).
    const direct = addon.volumeStats(s.handle).directReads;
    const after = finish(s);
    const expected = Buffer.from(model);
    reference.encrypt(expected, 0);
    reference.destroy();
    expect(after.subarray(dataOffset, dataOffset + size).equals(expected)).toBe(true);
    expect(after.subarray(0, dataOffset).equals(s.before.subarray(0, dataOffset))).toBe(true);
    expect(direct).toBeGreaterThan(0);
  });

  // Foreign volumes (LUKS2 with 4 KiB sectors, VeraCrypt, LUKS1 with AES-128-XTS): the tweak counts
  // 512-byte units from an offset; the model is the JavaScript sector cipher ForeignVolume uses.
  it.each([
    {
      name: 'LUKS2 4 KiB sectors, 512-byte IV units',
      sectorSize: 4096,
      ivUnitBytes: 512,
      ivOffset: 0,
      keyBytes: 64,
    },
    {
      name: 'VeraCrypt: 512-byte sectors from data offset / 512',
      sectorSize: 512,
      ivUnitBytes: 512,
      ivOffset: 256,
      keyBytes: 64,
    },
    {
      name: 'AES-128-XTS, 4 KiB sectors, IV offset',
      sectorSize: 4096,
      ivUnitBytes: 512,
      ivOffset: 2 ** 40 + 3,
      keyBytes: 32,
    },
  ])('foreign tweak rule ($name): random reads and writes match the model, the file the format', (layout) => {
    const random = prng(11 + layout.keyBytes + layout.sectorSize);
    const key = bytes(random, layout.keyBytes);
    const dataOffset = 2 * 4096 + 512;
    const size = 600 * 4096;
    const s = setup(
      `foreign-${layout.sectorSize}-${layout.keyBytes}.img`,
      {
        dataOffset,
        size,
        sectorSize: layout.sectorSize,
        ivUnitBytes: layout.ivUnitBytes,
        ivOffset: layout.ivOffset,
        readOnly: false,
        key,
      },
      random,
    );
    const reference = AES_XTS_PLAIN64.create(key, {
      sectorBytes: layout.sectorSize,
      ivUnitBytes: layout.ivUnitBytes,
      ivOffset: layout.ivOffset,
    });
    const model = Buffer.from(s.before.subarray(dataOffset, dataOffset + size));
    reference.decrypt(model, 0);
    exercise(s, model, random, 300);
    const after = finish(s);
    const expected = Buffer.from(model);
    reference.encrypt(expected, 0);
    reference.destroy();
    expect(after.subarray(0, dataOffset).equals(s.before.subarray(0, dataOffset))).toBe(true);
    expect(after.subarray(dataOffset, dataOffset + size).equals(expected)).toBe(true);
    expect(after.subarray(dataOffset + size).equals(s.before.subarray(dataOffset + size))).toBe(true);
  });

  it('plain (the bench passthrough): any size, bytes stored as they are', () => {
    const random = prng(2);
    const size = 300 * SECTOR + 1234;
    const s = setup('plain.img', { dataOffset: 0, size, sectorSize: SECTOR, readOnly: false }, random);
    const model = Buffer.from(s.before.subarray(0, size));
    exercise(s, model, random, 300);
    const after = finish(s);
    expect(after.subarray(0, size).equals(model)).toBe(true);
    expect(after.subarray(size).equals(s.before.subarray(size))).toBe(true);
  });

  it('read-only: writes are refused with EROFS, reads work', () => {
    const random = prng(3);
    const key = bytes(random, 64);
    const s = setup(
      'ro.img',
      { dataOffset: SECTOR, size: 16 * SECTOR, sectorSize: SECTOR, readOnly: true, key },
      random,
    );
    expect(addon.volumeWrite(s.handle, 0, Buffer.alloc(SECTOR))).toBe(EROFS);
    expect((addon.volumeRead(s.handle, 100, 5000) as Buffer).length).toBe(5000);
    expect(finish(s).equals(s.before)).toBe(true);
  });

  it('hidden-volume protection: a write into the range is refused, and every write after it', () => {
    const random = prng(4);
    const key = bytes(random, 64);
    const size = 64 * SECTOR;
    const s = setup(
      'protect.img',
      {
        dataOffset: 0,
        size,
        sectorSize: SECTOR,
        readOnly: false,
        key,
        protectStart: 40 * SECTOR,
        protectEnd: size,
      },
      random,
    );
    expect(addon.volumeWrite(s.handle, 0, Buffer.alloc(SECTOR, 1))).toBe(SECTOR);
    expect(addon.volumeStats(s.handle).protectionTripped).toBe(false);
    // The last byte before the range is fine; one byte into it is not.
    expect(addon.volumeWrite(s.handle, 40 * SECTOR - 10, Buffer.alloc(10, 2))).toBe(10);
    expect(addon.volumeWrite(s.handle, 40 * SECTOR - 10, Buffer.alloc(11, 3))).toBe(EIO);
    expect(addon.volumeStats(s.handle).protectionTripped).toBe(true);
    expect(addon.volumeWrite(s.handle, 0, Buffer.alloc(SECTOR, 4))).toBe(EIO);
    const after = finish(s);
    // The protected area is untouched ciphertext.
    expect(after.subarray(40 * SECTOR, size).equals(s.before.subarray(40 * SECTOR, size))).toBe(true);
    const plain = Buffer.from(after.subarray(0, 40 * SECTOR));
    const reference = createXts(key, { implementation: 'node-crypto' });
    reference.decrypt(plain, 0);
    reference.destroy();
    expect(plain.subarray(0, SECTOR).equals(Buffer.alloc(SECTOR, 1))).toBe(true);
    expect(plain.subarray(40 * SECTOR - 10).equals(Buffer.alloc(10, 2))).toBe(true);
  });

  it('concurrent writers sharing sectors lose nothing (read-modify-write under the sector lock)', () => {
    const random = prng(5);
    const key = bytes(random, 64);
    const size = 256 * SECTOR;
    const s = setup('hammer.img', { dataOffset: 0, size, sectorSize: SECTOR, readOnly: false, key }, random);
    const threads = 8;
    const rounds = 4;
    const chunk = 1000; // neighbouring chunks, of other threads, share sectors
    expect(addon.volumeHammer(s.handle, threads, rounds, chunk)).toBe(0);
    const got = addon.volumeRead(s.handle, 0, size) as Buffer;
    const chunks = Math.floor(size / chunk);
    let wrong = 0;
    for (let c = 0; c < chunks; c++) {
      const thread = c % threads;
      for (let i = 0; i < chunk; i++) {
        const position = c * chunk + i;
        const expected = (thread * 31 + (rounds - 1) * 7 + position * 13 + 1) & 0xff;
        if (got[position] !== expected) wrong++;
      }
    }
    expect(wrong).toBe(0);
    finish(s);
  });

  it('rejects bad options instead of guessing', () => {
    const fd = openSync(join(dir, 'bad.img'), 'w+');
    try {
      const base = { fd, dataOffset: 0, size: 16 * SECTOR, sectorSize: SECTOR, readOnly: false };
      expect(() => addon.openVolume({ ...base, key: new Uint8Array(63) })).toThrow(/64-byte/);
      expect(() => addon.openVolume({ ...base, key: new Uint8Array(64) })).toThrow(/halves must differ/);
      const key = bytes(prng(6), 64);
      expect(() => addon.openVolume({ ...base, key, size: 16 * SECTOR + 1 })).toThrow(
        /multiple of the sector/,
      );
      expect(() => addon.openVolume({ ...base, sectorSize: 1000 })).toThrow(/sectorSize/);
      expect(() => addon.openVolume({ ...base, key, ivUnitBytes: 3000 })).toThrow(/ivUnitBytes/);
      expect(() => addon.openVolume({ ...base, key, ivUnitBytes: 8192 })).toThrow(/ivUnitBytes/);
      expect(() => addon.openVolume({ ...base, key, ivOffset: 2 ** 53 })).toThrow(/ivOffset/);
      expect(() => addon.openVolume({ ...base, size: -1 })).toThrow(/size/);
      expect(() => addon.openVolume({ ...base, fd: 1 << 30 })).toThrow(/descriptor|fd/);
      const handle = addon.openVolume(base);
      expect(() => addon.volumeRead(handle, 1.5, 10)).toThrow(/integers/);
      addon.closeVolume(handle);
      expect(() => addon.volumeRead(handle, 0, 10)).toThrow(/closed/);
    } finally {
      closeSync(fd);
    }
  });
});
