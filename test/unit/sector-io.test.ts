// SectorIo (src/container/sector-io.ts), the data path vaults and foreign volumes share: against a
// plain byte model, for a vault's 4 KiB sectors and dm-crypt's 512-byte ones, with reads and writes of
// any offset and length, many in flight at once, overlapping ones landing in the order they were made;
// and a read-modify-write that fails half-way leaves no cleartext in the reused buffer.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HiddenProtection } from '../../src/container/access.js';
import type { ContainerFile } from '../../src/container/file.js';
import { type SectorArea, SectorIo } from '../../src/container/sector-io.js';
import { AES_XTS_PLAIN64, type SectorCipher } from '../../src/crypto/suites.js';
import { allZero } from '../tools/zero.js';

const DATA_OFFSET = 8192;

/** An in-memory file whose reads and writes each take a turn of the event loop, so they interleave. */
function memoryFile(size: number, failRead?: (call: number) => boolean) {
  const bytes = Buffer.alloc(size);
  let reads = 0;
  const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
  const file = {
    path: '/memory',
    writable: true,
    async read(buffer: Uint8Array, position: number) {
      await turn();
      if (failRead?.(++reads)) throw new Error('injected read failure');
      buffer.set(bytes.subarray(position, position + buffer.length));
    },
    async write(buffer: Uint8Array, position: number) {
      await turn();
      bytes.set(buffer, position);
    },
  } as unknown as ContainerFile;
  return { file, bytes };
}

/** A writable data area of `size` bytes at DATA_OFFSET, with no hidden volume to protect. */
function area(size: number, sectorBytes: number): SectorArea {
  const protection = new HiddenProtection(undefined, []);
  return { dataOffset: DATA_OFFSET, size, sectorBytes, readOnly: false, protection, noun: 'volume' };
}

function cipherFor(sectorBytes: number): SectorCipher {
  return AES_XTS_PLAIN64.create(randomBytes(64), { sectorBytes, ivUnitBytes: 512, ivOffset: 0 });
}

/** A random access of 1 byte to 3 sectors, anywhere in `size` (aligned whole sectors a third of the time). */
function randomAccess(size: number, sector: number): { offset: number; length: number } {
  if (Math.random() < 1 / 3) {
    const count = 1 + Math.floor(Math.random() * 3);
    return {
      offset: Math.floor(Math.random() * (size / sector - count + 1)) * sector,
      length: count * sector,
    };
  }
  const length = 1 + Math.floor(Math.random() * 3 * sector);
  return { offset: Math.floor(Math.random() * (size - length + 1)), length };
}

describe.each([4096, 512])('SectorIo with %i-byte sectors', (sector) => {
  const size = 64 * sector;

  it('reads back what a byte model holds, over rounds of concurrent overlapping writes', async () => {
    const { file, bytes } = memoryFile(DATA_OFFSET + size);
    const cipher = cipherFor(sector);
    const io = new SectorIo(file, area(size, sector));
    const model = Buffer.alloc(size);
    // The data area starts as the encryption of zeros, as a created volume's would.
    const zeros = Buffer.alloc(size);
    cipher.encrypt(zeros, 0, bytes.subarray(DATA_OFFSET));
    for (let round = 0; round < 20; round++) {
      const writes = Array.from({ length: 8 }, () => ({
        ...randomAccess(size, sector),
        fill: randomBytes(1)[0] ?? 0,
      }));
      // All started at once; where they overlap, the one made later must win.
      await Promise.all(
        writes.map(({ offset, length, fill }) => io.write(cipher, Buffer.alloc(length, fill), offset)),
      );
      for (const { offset, length, fill } of writes) model.fill(fill, offset, offset + length);
      await io.settled();
      const reads = Array.from({ length: 8 }, () => randomAccess(size, sector));
      const got = await Promise.all(
        reads.map(async ({ offset, length }) => {
          const into = Buffer.alloc(length);
          await io.read(cipher, into, offset);
          return into;
        }),
      );
      reads.forEach(({ offset, length }, i) => {
        expect(got[i]?.equals(model.subarray(offset, offset + length)), `round ${round}, read ${i}`).toBe(
          true,
        );
      });
    }
    // And the file holds the model's ciphertext, sector by sector, nothing outside the data area.
    const whole = Buffer.from(bytes.subarray(DATA_OFFSET));
    cipher.decrypt(whole, 0);
    expect(whole.equals(model)).toBe(true);
    expect(allZero(bytes.subarray(0, DATA_OFFSET))).toBe(true);
    cipher.destroy();
  });

  it('a write that waits behind an overlapping one still lands when settled() is awaited at once', async () => {
    const { file } = memoryFile(DATA_OFFSET + size);
    const cipher = cipherFor(sector);
    const io = new SectorIo(file, area(size, sector));
    const first = io.write(cipher, Buffer.alloc(sector, 1), 3);
    const second = io.write(cipher, Buffer.alloc(10, 2), 5);
    await io.settled();
    await Promise.all([first, second]);
    const back = Buffer.alloc(sector + 3);
    await io.read(cipher, back, 0);
    expect(back.subarray(3, 5).equals(Buffer.alloc(2, 1))).toBe(true);
    expect(back.subarray(5, 15).equals(Buffer.alloc(10, 2))).toBe(true);
    expect(back.subarray(15).equals(Buffer.alloc(sector - 12, 1))).toBe(true);
    cipher.destroy();
  });

  it('a read-modify-write whose second read fails wipes the sector it had decrypted', async () => {
    const { file } = memoryFile(DATA_OFFSET + size, (call) => call === 2);
    const cipher = cipherFor(sector);
    const decrypted: Uint8Array[] = [];
    const watched: SectorCipher = {
      ...cipher,
      encrypt: (input, firstSector, out) => cipher.encrypt(input, firstSector, out),
      decrypt: (input, firstSector, out) => {
        cipher.decrypt(input, firstSector, out);
        decrypted.push(out ?? input);
      },
      destroy: () => cipher.destroy(),
    };
    const io = new SectorIo(file, area(size, sector));
    // Partial at both ends: the head sector is read and decrypted, then the tail's read fails.
    await expect(io.write(watched, Buffer.alloc(sector, 7), 1)).rejects.toThrow('injected read failure');
    expect(decrypted).toHaveLength(1);
    expect(allZero(decrypted[0])).toBe(true);
    cipher.destroy();
  });
});
