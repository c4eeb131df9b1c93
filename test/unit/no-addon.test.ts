// Without the native addon (not built): src/crypto/memory.ts and xts.ts fall back, and say so. The
// process stays dumpable and key memory is not locked (SECURITY.md says so, `vault doctor` reports
// it), and XTS comes from node:crypto only, with the addon refused by name.
import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { hardenProcess, keyMemoryLocked, lockedBuffer, moveToLocked } from '../../src/crypto/memory.js';
import { activeXtsImplementation, availableXtsImplementations, createXts } from '../../src/crypto/xts.js';

vi.mock('../../src/crypto/native.js', () => ({ nativeAddon: null }));

describe('without the native addon', () => {
  it('the process stays dumpable, key memory is not locked, key buffers are ordinary zeroed Buffers', () => {
    expect(hardenProcess()).toEqual({ dumpable: true, coreLimit: null });
    expect(keyMemoryLocked()).toBe(false);
    const buffer = lockedBuffer(64);
    expect(buffer.length).toBe(64);
    expect(buffer.every((byte) => byte === 0)).toBe(true);
    const source = randomBytes(32);
    const copy = Buffer.from(source);
    const moved = moveToLocked(source);
    expect(moved.equals(copy)).toBe(true);
    expect(source.every((byte) => byte === 0)).toBe(true);
  });

  it('XTS comes from node:crypto, and asking for the addon says it is not loaded', () => {
    const saved = process.env.VAULT_XTS;
    delete process.env.VAULT_XTS;
    try {
      expect(availableXtsImplementations()).toEqual(['node-crypto']);
      expect(activeXtsImplementation()).toBe('node-crypto');
      const key = randomBytes(64);
      expect(createXts(key).implementation).toBe('node-crypto');
      expect(() => createXts(key, { implementation: 'openssl-addon' })).toThrow(
        /^the native XTS addon \(build\/Release\/vault_xts\.node\) is not loaded$/,
      );
    } finally {
      if (saved !== undefined) process.env.VAULT_XTS = saved;
    }
  });
});
