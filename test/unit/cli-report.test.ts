// The error lines users see: `vault: error:` + `vault: hint:`, the exit code from the table, a stack
// trace only with VAULT_DEBUG=1, and system errors that escaped unwrapped still mapped to their meaning.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import { reportError, warn } from '../../src/cli/report.js';
import { VaultError } from '../../src/container/errors.js';

function captureStderr(run: () => number): { code: number; text: string } {
  let text = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    text += String(chunk);
    return true;
  });
  try {
    return { code: run(), text };
  } finally {
    spy.mockRestore();
  }
}

function systemError(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

afterEach(() => {
  delete process.env.VAULT_DEBUG;
});

describe('reportError', () => {
  it('prints the two lines of a VaultError and returns its exit code', () => {
    const { code, text } = captureStderr(() =>
      reportError(new VaultError('EXISTS', 'file exists: a.vol', 'use -f')),
    );
    expect(code).toBe(EXIT_CODES.EXISTS);
    expect(text).toBe('vault: error: file exists: a.vol\nvault: hint: use -f\n');
  });

  it('adds the stack only with VAULT_DEBUG=1', () => {
    process.env.VAULT_DEBUG = '1';
    const { text } = captureStderr(() => reportError(new VaultError('USAGE', 'bad', 'fix it')));
    expect(text).toMatch(/^vault: error: bad\nvault: hint: fix it\nVaultError: bad\n\s+at /);
  });

  it.each([
    ['ENOSPC', 'ENOSPC: no space left on device, write', EXIT_CODES.IO, /free space/],
    ['ENOENT', "ENOENT: no such file or directory, open '/x/y'", EXIT_CODES.NOT_FOUND, /check the path/],
    ['EROFS', "EROFS: read-only file system, open '/ro/f'", EXIT_CODES.IO, /read-only/],
    ['EPERM', 'EPERM: operation not permitted, mount', EXIT_CODES.NEEDS_SYSTEM, /root/],
    ['EBUSY', 'EBUSY: resource busy or locked, umount', EXIT_CODES.BUSY, /using it/],
  ])('maps an unwrapped %s to its exit code with a hint', (errno, message, exit, hint) => {
    const { code, text } = captureStderr(() => reportError(systemError(errno, message)));
    expect(code).toBe(exit);
    expect(text).toMatch(
      new RegExp(`^vault: error: ${message.slice(errno.length + 2).replace(/[()'/]/g, '.')}\n`),
    );
    expect(text.split('\n')[1]).toMatch(hint);
  });

  it('calls anything else an internal error, asks for a report, exit code 1', () => {
    const { code, text } = captureStderr(() => reportError(new TypeError('x is undefined')));
    expect(code).toBe(EXIT_CODES.INTERNAL);
    expect(text).toBe(
      'vault: error: internal error: x is undefined\n' +
        'vault: hint: this is a bug; run again with VAULT_DEBUG=1 and report the output\n',
    );
  });
});

describe('warn', () => {
  it('writes one warning line', () => {
    const { text } = captureStderr(() => {
      warn('primary header damaged, using the backup; run vault repair');
      return 0;
    });
    expect(text).toBe('vault: warning: primary header damaged, using the backup; run vault repair\n');
  });
});
