// parseSize: what `vault create <size>` accepts (binary units, as dd and VeraCrypt) and what it refuses.
import { describe, expect, it } from 'vitest';
import { formatSize, parseSize } from '../../src/cli/size.js';
import { isVaultError } from '../../src/container/errors.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

describe('parseSize accepts', () => {
  it.each([
    ['1048576', MiB],
    ['4096K', 4 * MiB],
    ['64M', 64 * MiB],
    ['512M', 512 * MiB],
    ['2G', 2 * GiB],
    ['1.5T', 1.5 * TiB],
    ['0.5K', 512],
    ['2g', 2 * GiB],
    ['64MiB', 64 * MiB],
    ['64mib', 64 * MiB],
    ['64MB', 64 * MiB],
    ['1.25G', 1.25 * GiB],
    ['512B', 512],
    [' 64M ', 64 * MiB],
    ['8T', 8 * TiB],
  ])('%j -> %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });
});

describe('parseSize refuses with a usage error and a hint', () => {
  it.each([
    ['2X'],
    ['-1'],
    ['0'],
    ['0M'],
    [''],
    ['1e9'],
    ['M'],
    ['1.'],
    ['.5G'],
    ['1,5G'],
    ['1.3K'], // 1331.2 bytes
    ['0.1'], // not a whole byte
    ['5iB'],
    ['1 G'],
    ['10P'],
    ['99999999T'], // beyond 2^53 bytes
    ['0x100'],
    ['Infinity'],
  ])('%j', (text) => {
    let caught: unknown;
    try {
      parseSize(text);
    } catch (error) {
      caught = error;
    }
    expect(isVaultError(caught, 'USAGE')).toBe(true);
    if (isVaultError(caught)) expect(caught.hint).toMatch(/64M.*1\.5T/);
  });
});

describe('formatSize', () => {
  it.each([
    [512, '512 B'],
    [4096, '4 KiB'],
    [64 * MiB, '64 MiB'],
    [1.5 * GiB, '1.5 GiB'],
    [8126464, '7.8 MiB'],
    [200 * GiB, '200 GiB'],
  ])('%d -> %s', (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
  });
});
