// openBody (src/container/header.ts) wipes the body it decrypted, once it has decoded it: the decrypted
// bytes (sizes, the hidden flag, the mirrored keyslots) do not outlive the call, whether the body was
// accepted or rejected after authenticating.
import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { openBody, randomSlotTable, sealHeader } from '../../src/container/header.js';
import { DATA_OFFSET, MIN_DATA_BYTES, SALT_BYTES, SLOT_TABLE_BYTES } from '../../src/container/layout.js';

// Every plaintext the AEAD hands back, to look at after the call.
const opened = vi.hoisted(() => [] as Uint8Array[]);
vi.mock('../../src/crypto/aead.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/crypto/aead.js')>();
  return {
    ...original,
    open: (...args: Parameters<typeof original.open>) => {
      const plain = original.open(...args);
      if (plain) opened.push(plain);
      return plain;
    },
  };
});

describe('openBody wipes the decrypted body', () => {
  it('after decoding an accepted body', () => {
    const headerKey = randomBytes(32);
    const sector = sealHeader(
      0,
      randomSlotTable(),
      {
        flags: 0,
        sequence: 3,
        dataOffset: DATA_OFFSET,
        dataSize: 2 * MIN_DATA_BYTES,
        slotMask: 1,
        mirrorSalt: randomBytes(SALT_BYTES),
        mirrorSlots: randomBytes(SLOT_TABLE_BYTES),
      },
      headerKey,
    );
    opened.length = 0;
    const body = openBody(0, sector, headerKey);
    expect(body).toMatchObject({ sequence: 3, dataSize: 2 * MIN_DATA_BYTES });
    expect(opened.length).toBe(1);
    expect(opened[0]?.every((byte) => byte === 0)).toBe(true);
    // What openBody returned is its own copy, not the wiped buffer.
    expect(body?.mirrorSalt.some((byte) => byte !== 0)).toBe(true);
  });
});
