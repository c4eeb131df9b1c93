// An independent XTS-AES-256 for tests only: IEEE 1619 written out on top of @noble/ciphers' AES-ECB,
// sharing no code with src/crypto/xts.ts or OpenSSL, so the two can check each other. Slow and plain.
import { ecb } from '@noble/ciphers/aes.js';

const BLOCK = 16;

/** Encrypts (or decrypts) consecutive data units; unit j uses tweak firstSector + j as a 128-bit LE number. */
export function referenceXts(
  direction: 'encrypt' | 'decrypt',
  key: Uint8Array,
  sectorSize: number,
  firstSector: bigint,
  input: Uint8Array,
): Uint8Array {
  if (key.length !== 64) throw new RangeError('reference XTS key must be 64 bytes');
  if (sectorSize % BLOCK !== 0 || input.length % sectorSize !== 0) throw new RangeError('whole blocks only');
  const dataKey = key.subarray(0, 32);
  const tweakKey = key.subarray(32, 64);
  const output = new Uint8Array(input.length);
  for (let offset = 0, sector = firstSector; offset < input.length; offset += sectorSize, sector++) {
    const masks = tweakMasks(tweakKey, sector, sectorSize / BLOCK);
    const masked = xor(input.subarray(offset, offset + sectorSize), masks);
    // noble's ECB objects are single-use, hence a fresh one per data unit.
    const aes = ecb(dataKey, { disablePadding: true });
    const transformed = direction === 'encrypt' ? aes.encrypt(masked) : aes.decrypt(masked);
    output.set(xor(transformed, masks), offset);
  }
  return output;
}

/** T_0 = AES(tweakKey, sector as 16 LE bytes); T_{j+1} = T_j * alpha in GF(2^128), all concatenated. */
function tweakMasks(tweakKey: Uint8Array, sector: bigint, blocks: number): Uint8Array {
  const tweak = new Uint8Array(BLOCK);
  let rest = sector;
  for (let i = 0; i < BLOCK; i++) {
    tweak[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  const masks = new Uint8Array(blocks * BLOCK);
  let current: Uint8Array = ecb(tweakKey, { disablePadding: true }).encrypt(tweak);
  for (let j = 0; j < blocks; j++) {
    masks.set(current, j * BLOCK);
    current = timesAlpha(current);
  }
  return masks;
}

/** Multiplication by x modulo x^128 + x^7 + x^2 + x + 1, on the little-endian byte order of IEEE 1619. */
function timesAlpha(block: Uint8Array): Uint8Array {
  const result = new Uint8Array(BLOCK);
  let carry = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = block[i] ?? 0;
    result[i] = ((byte << 1) | carry) & 0xff;
    carry = byte >> 7;
  }
  if (carry) result[0] = (result[0] ?? 0) ^ 0x87;
  return result;
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const result = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) result[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return result;
}
