// Ctrl-C handling: a command that asked for interruptSignal() sees it aborted with a VaultError
// INTERRUPTED (so its cleanup runs and main exits 130); before anyone asks, Node's default stays.
import { afterEach, describe, expect, it } from 'vitest';
import {
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
