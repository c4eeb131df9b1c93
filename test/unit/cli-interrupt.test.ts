// Ctrl-C handling: a command that asked for interruptSignal() sees it aborted with a VaultError
// INTERRUPTED (so its cleanup runs and main exits 130); before anyone asks, Node's default stays.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  buildingFile,
  interruptSignal,
  releaseInterrupts,
  resetInterruptsForTests,
  throwIfInterrupted,
  wasInterrupted,
} from '../../src/cli/interrupt.js';
import { isVaultError } from '../../src/container/errors.js';

afterEach(resetInterruptsForTests);

describe('interruptSignal', () => {
  it('installs no handler until a command asks for it', () => {
    const before = process.listenerCount('SIGINT');
    interruptSignal();
    expect(process.listenerCount('SIGINT')).toBe(before + 1);
    expect(process.listenerCount('SIGTERM')).toBeGreaterThanOrEqual(1);
    releaseInterrupts();
    expect(process.listenerCount('SIGINT')).toBe(before);
  });

  it.each(['SIGINT', 'SIGTERM'] as const)('%s aborts the signal with VaultError INTERRUPTED', (name) => {
    const signal = interruptSignal();
    expect(signal.aborted).toBe(false);
    expect(() => throwIfInterrupted()).not.toThrow();
    process.emit(name, name);
    expect(signal.aborted).toBe(true);
    expect(isVaultError(signal.reason, 'INTERRUPTED')).toBe(true);
    expect(wasInterrupted()).toBe(true);
    expect(() => throwIfInterrupted()).toThrow(/interrupted/);
  });

  it('hands out the same signal within one run', () => {
    expect(interruptSignal()).toBe(interruptSignal());
  });
});

describe('a second signal', () => {
  it("exits 130 at once and names the temporary file it leaves (this process's, next to the target)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'vault-interrupt-'));
    const target = join(dir, 'new.vol');
    const ours = join(dir, `.new.vol.vault-tmp-${process.pid}-0a1b2c3d`);
    writeFileSync(ours, '');
    writeFileSync(join(dir, '.new.vol.vault-tmp-1-99999999'), ''); // another process's: not ours to name
    const written: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((text) => {
      written.push(String(text));
      return true;
    });
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    try {
      buildingFile(target);
      interruptSignal();
      process.emit('SIGINT', 'SIGINT');
      expect(exit).not.toHaveBeenCalled();
      process.emit('SIGINT', 'SIGINT');
      expect(exit).toHaveBeenCalledWith(130);
    } finally {
      write.mockRestore();
      exit.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
    const stderr = written.join('');
    expect(stderr).toContain('vault: error: SIGINT again; exiting without cleanup\n');
    expect(stderr).toContain(`vault: hint: left behind: ${ours} (an incomplete file; remove it with rm`);
    expect(stderr).not.toContain('vault-tmp-1-');
  });
});
