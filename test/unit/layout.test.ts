// The v1 file layout (docs/FORMAT.md sections 1 and 3) as src/container/layout.ts computes it: where
// each of the four header copies lives and which copy id its AEAD binds. A header written one sector off
// or bound to the wrong id makes every vault unreadable, so the figures are pinned here.
import { describe, expect, it } from 'vitest';
import {
  BACKUP,
  BACKUP_AREA_BYTES,
  backupHeaderOffset,
  copyId,
  DATA_OFFSET,
  HEADER_AREA_BYTES,
  HIDDEN_AREA_OFFSET,
  headerOffset,
  MIN_FILE_BYTES,
  OVERHEAD_BYTES,
  PRIMARY,
} from '../../src/container/layout.js';

describe('v1 layout', () => {
  it('the four header copies: outer at 0 and 128 KiB from the end, hidden at 64 KiB and 64 KiB from the end', () => {
    const fileSize = 10 * 2 ** 20;
    expect(headerOffset('outer', PRIMARY, fileSize)).toBe(0);
    expect(headerOffset('outer', BACKUP, fileSize)).toBe(fileSize - 131072);
    expect(headerOffset('hidden', PRIMARY, fileSize)).toBe(65536);
    expect(headerOffset('hidden', BACKUP, fileSize)).toBe(fileSize - 65536);
    expect(backupHeaderOffset(fileSize)).toBe(fileSize - 131072);
    expect(backupHeaderOffset(MIN_FILE_BYTES)).toBe(DATA_OFFSET + MIN_FILE_BYTES - OVERHEAD_BYTES);
  });

  it('the areas do not overlap: primary, hidden, data, backup, hidden backup', () => {
    const fileSize = MIN_FILE_BYTES;
    expect(headerOffset('hidden', PRIMARY, fileSize)).toBe(HIDDEN_AREA_OFFSET);
    expect(HIDDEN_AREA_OFFSET + HEADER_AREA_BYTES).toBe(DATA_OFFSET);
    expect(headerOffset('outer', BACKUP, fileSize) + HEADER_AREA_BYTES).toBe(
      headerOffset('hidden', BACKUP, fileSize),
    );
    expect(headerOffset('hidden', BACKUP, fileSize) + HEADER_AREA_BYTES).toBe(fileSize);
    expect(BACKUP_AREA_BYTES).toBe(2 * HEADER_AREA_BYTES);
  });

  it('copy ids: outer primary 0, outer backup 1, hidden primary 2, hidden backup 3', () => {
    expect(copyId('outer', PRIMARY)).toBe(0);
    expect(copyId('outer', BACKUP)).toBe(1);
    expect(copyId('hidden', PRIMARY)).toBe(2);
    expect(copyId('hidden', BACKUP)).toBe(3);
  });
});
