// The cleartext data path every volume (vault or foreign) shares, at any byte offset over a data area
// of whole encrypted sectors: whole sectors go straight between the caller's buffer and the file, a
// partial first or last sector is a read-modify-write, and writes that share a sector run one after
// another in arrival order, so a read-modify-write never undoes another write. Every access is
// checked first, alike for both: inside the volume, writable, clear of a protected hidden volume.
import type { SectorCipher } from '../crypto/suites.js';
import { checkAccessRange, type HiddenProtection } from './access.js';
import { VaultError } from './errors.js';
import type { ContainerFile } from './file.js';

export interface SectorArea {
  /** Where the data area starts in the file, its length (the volume's size) and its sector size. */
  dataOffset: number;
  size: number;
  sectorBytes: number;
  readOnly: boolean;
  protection: HiddenProtection;
  /** What the read-only refusal calls the volume: "vault" or "volume". */
  noun: string;
}

/**
 * The reused write buffer (one per volume) and its size: a fresh allocation per 128 KiB write cost
 * more than the write's encryption. Larger writes, or writes while it is busy, get a fresh buffer.
 */
const SCRATCH_BYTES = 1 << 20;

export class SectorIo {
  #writesInFlight: Array<{ first: number; last: number; done: Promise<void> }> = [];
  #scratch: Buffer | null = null;
  // Stryker disable next-line BooleanLiteral: equivalent, performance only (a busy scratch means a fresh buffer per write)
  #scratchBusy = false;

  constructor(
    private readonly file: ContainerFile,
    private readonly area: SectorArea,
  ) {}

  /** Fills plain with the cleartext at `offset` (RangeError outside the volume). */
  async read(cipher: SectorCipher, plain: Uint8Array, offset: number): Promise<void> {
    checkAccessRange(plain.length, offset, this.area.size);
    if (plain.length === 0) return;
    const sector = this.area.sectorBytes;
    if (offset % sector === 0 && plain.length % sector === 0) {
      // Whole sectors: the ciphertext straight into the caller's buffer, decrypted in place.
      await this.file.read(plain, this.area.dataOffset + offset);
      cipher.decrypt(plain, offset / sector);
      return;
    }
    const first = Math.floor(offset / sector);
    const last = Math.floor((offset + plain.length - 1) / sector);
    const sectors = Buffer.alloc((last - first + 1) * sector);
    try {
      await this.file.read(sectors, this.area.dataOffset + first * sector);
      cipher.decrypt(sectors, first);
      const start = offset - first * sector;
      plain.set(sectors.subarray(start, start + plain.length));
    } finally {
      sectors.fill(0);
    }
  }

  /**
   * Writes plain at `offset`: refused when read-only, outside the volume (RangeError) or into the
   * protected hidden volume. The caller takes the cipher before any waiting here: a close() that
   * waits for writes in flight must not make them fail.
   */
  async write(cipher: SectorCipher, plain: Uint8Array, offset: number): Promise<void> {
    const { readOnly, size, protection, noun } = this.area;
    if (readOnly)
      throw new VaultError('IO', `the ${noun} is open read-only`, 'open it read-write', {
        reason: 'read-only',
      });
    checkAccessRange(plain.length, offset, size);
    if (plain.length === 0) return;
    protection.checkWrite(plain.length, offset);
    const first = Math.floor(offset / this.area.sectorBytes);
    const last = Math.floor((offset + plain.length - 1) / this.area.sectorBytes);
    // Stryker disable next-line ConditionalExpression: equivalent, waiting for every earlier write (not just those sharing a sector) is slower, not different
    const earlier = this.#writesInFlight.filter((write) => write.first <= last && first <= write.last);
    let release = () => {};
    const entry = { first, last, done: new Promise<void>((resolve) => (release = resolve)) };
    this.#writesInFlight.push(entry);
    try {
      if (earlier.length > 0) await Promise.all(earlier.map((write) => write.done));
      await this.#writeSectors(cipher, plain, offset, first, last);
    } finally {
      this.#writesInFlight.splice(this.#writesInFlight.indexOf(entry), 1);
      release();
    }
  }

  /** Resolves when every write begun so far has ended (close() waits for them). */
  async settled(): Promise<void> {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, Promise.all([]) resolves at once
    if (this.#writesInFlight.length > 0) await Promise.all(this.#writesInFlight.map((write) => write.done));
  }

  async #writeSectors(cipher: SectorCipher, plain: Uint8Array, offset: number, first: number, last: number) {
    const sector = this.area.sectorBytes;
    const sectors = this.#takeScratch((last - first + 1) * sector);
    // The buffer holds cleartext only between a read-modify-write and the encryption that follows;
    // a failure in between wipes it.
    let cleartextInside = false;
    try {
      const start = offset - first * sector;
      const partialHead = start !== 0;
      const partialTail = (offset + plain.length) % sector !== 0;
      if (partialHead || partialTail) {
        // Read-modify-write: only the first and last sectors can be partial.
        cleartextInside = true;
        const head = sectors.subarray(0, sector);
        const tail = sectors.subarray(sectors.length - sector);
        if (partialHead) await this.#readSector(cipher, head, first);
        if (partialTail && (last !== first || !partialHead)) await this.#readSector(cipher, tail, last);
        sectors.set(plain, start);
        cipher.encrypt(sectors, first);
        cleartextInside = false;
      } else {
        // Whole sectors: encrypt straight from the caller's buffer, which is never modified.
        cipher.encrypt(plain, first, sectors);
      }
      await this.file.write(sectors, this.area.dataOffset + first * sector);
    } finally {
      if (cleartextInside) sectors.fill(0);
      this.#returnScratch(sectors);
    }
  }

  async #readSector(cipher: SectorCipher, into: Buffer, index: number): Promise<void> {
    await this.file.read(into, this.area.dataOffset + index * this.area.sectorBytes);
    cipher.decrypt(into, index);
  }

  /** The kept buffer when it is free and large enough, else a fresh one (writes may overlap in time). */
  #takeScratch(length: number): Buffer {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, performance only (a fresh buffer instead of the scratch)
    if (this.#scratchBusy || length > SCRATCH_BYTES) return Buffer.allocUnsafe(length);
    this.#scratchBusy = true;
    this.#scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES);
    return this.#scratch.subarray(0, length);
  }

  #returnScratch(used: Buffer): void {
    // Stryker disable next-line ConditionalExpression,BooleanLiteral: equivalent, a scratch never given back only costs fresh buffers from then on
    if (this.#scratch && used.buffer === this.#scratch.buffer) this.#scratchBusy = false;
  }
}
