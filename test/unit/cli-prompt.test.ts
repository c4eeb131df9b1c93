// The no-echo prompt's line editing, driven by a fake terminal: what a user types is exactly what
// becomes the password (Backspace, Ctrl-U, pasted text), Ctrl-C cancels, and the terminal leaves raw mode.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { MAX_PASSWORD_BYTES, promptCannotTake, promptHidden, promptYesNo } from '../../src/cli/prompt.js';
import { isVaultError } from '../../src/container/errors.js';

class FakeTerminal extends EventEmitter {
  readonly isTTY = true;
  rawModes: boolean[] = [];
  paused = false;
  chunks: Buffer[] = [];
  output = '';
  setRawMode(mode: boolean): void {
    this.rawModes.push(mode);
  }
  resume(): void {
    this.paused = false;
  }
  pause(): void {
    this.paused = true;
  }
  type(...keys: Array<string | number[]>): void {
    for (const key of keys) {
      const chunk = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key);
      this.chunks.push(chunk);
      this.emit('data', chunk);
    }
  }
}

function prompt(terminal: FakeTerminal, text = 'Password: '): Promise<Buffer> {
  return promptHidden(text, {
    input: terminal,
    output: { write: (written: string) => (terminal.output += written) },
  });
}

async function typed(...keys: Array<string | number[]>): Promise<string> {
  const terminal = new FakeTerminal();
  const result = prompt(terminal);
  terminal.type(...keys);
  return (await result).toString('utf8');
}

describe('promptHidden', () => {
  it('returns the typed line, writes only the prompt and a newline, restores the terminal', async () => {
    const terminal = new FakeTerminal();
    const result = prompt(terminal);
    terminal.type('s3cret', '\r');
    expect((await result).toString()).toBe('s3cret');
    expect(terminal.output).toBe('Password: \n'); // no echo, no asterisks
    expect(terminal.rawModes).toEqual([true, false]);
    expect(terminal.paused).toBe(true);
    expect(terminal.listenerCount('data')).toBe(0);
  });

  it('wipes the chunks it received', async () => {
    const terminal = new FakeTerminal();
    const result = prompt(terminal);
    terminal.type('abc\r');
    await result;
    expect(terminal.chunks.every((chunk) => chunk.every((byte) => byte === 0))).toBe(true);
  });

  it('edits like a terminal line', async () => {
    expect(await typed('abcd', [0x7f, 0x7f], 'xy\r')).toBe('abxy'); // Backspace (DEL)
    expect(await typed('ab', [0x08], 'c\n')).toBe('ac'); // Backspace (^H), Enter as LF
    expect(await typed('wrong', [0x15], 'right\r')).toBe('right'); // Ctrl-U clears
    expect(await typed('pässwörd€', [0x7f, 0x7f, 0x7f], '\r')).toBe('pässwö'); // a whole UTF-8 character per Backspace
    expect(await typed([0x7f, 0x7f], 'a\r')).toBe('a'); // Backspace on an empty line
    expect(await typed('a', [0x1b, 0x5b, 0x41], 'b\r')).toBe('ab'); // arrow keys are ignored
    expect(await typed('a\tb', [0x04], '\r')).toBe('a\tb'); // Tab is typed (as --password-stdin takes it); Ctrl-D mid-line is ignored
    expect(await typed('a', [0x01, 0x1f], 'b\r')).toBe('ab'); // other control characters are ignored
    expect(await typed('pasted line\rrest')).toBe('pasted line'); // typed-ahead text after Enter is dropped
    expect(await typed('\r')).toBe(''); // an empty answer is allowed (keyfiles only)
  });

  it('caps the length at MAX_PASSWORD_BYTES and rings the bell', async () => {
    const terminal = new FakeTerminal();
    const result = prompt(terminal);
    terminal.type('x'.repeat(MAX_PASSWORD_BYTES + 3), '\r');
    expect((await result).length).toBe(MAX_PASSWORD_BYTES);
    expect(terminal.output).toContain('\x07');
  });

  it('Ctrl-C rejects with INTERRUPTED and restores the terminal', async () => {
    const terminal = new FakeTerminal();
    const result = prompt(terminal);
    terminal.type('half', [0x03]);
    const error = await result.catch((caught: unknown) => caught);
    expect(isVaultError(error, 'INTERRUPTED')).toBe(true);
    expect(terminal.rawModes).toEqual([true, false]);
  });

  it('Ctrl-D on an empty line rejects with MISSING_SECRET', async () => {
    const terminal = new FakeTerminal();
    const result = prompt(terminal);
    terminal.type([0x04]);
    expect(isVaultError(await result.catch((caught: unknown) => caught), 'MISSING_SECRET')).toBe(true);
  });

  it('refuses to prompt without a terminal', async () => {
    const terminal = new FakeTerminal();
    Object.defineProperty(terminal, 'isTTY', { value: false });
    const error = await prompt(terminal).catch((caught: unknown) => caught);
    expect(isVaultError(error, 'MISSING_SECRET')).toBe(true);
    expect(terminal.rawModes).toEqual([]);
  });
});

describe('one rule for the prompt and --password-stdin', () => {
  it('whatever the prompt can return, promptCannotTake accepts; what it refuses, the prompt cannot produce', async () => {
    // Every byte value typed alone: the prompt keeps exactly the bytes promptCannotTake accepts.
    for (let byte = 0; byte < 256; byte += 1) {
      if ([0x03, 0x04, 0x0a, 0x0d, 0x1b].includes(byte)) continue; // these end or cancel the prompt
      const got = await typed('a', [byte], 'b\r');
      const kept = Buffer.from(got, 'utf8').length === 3 || got.length === 3;
      expect(kept, `byte 0x${byte.toString(16)}`).toBe(promptCannotTake(Buffer.from([byte])) === null);
    }
  });

  it('refuses control characters (but TAB) and more than MAX_PASSWORD_BYTES bytes', () => {
    expect(promptCannotTake(Buffer.from('tab\there ünïcödé'))).toBeNull();
    expect(promptCannotTake(Buffer.from('bell\x07'))).toContain('0x07');
    expect(promptCannotTake(Buffer.from('esc\x1b[A'))).toContain('0x1b');
    expect(promptCannotTake(Buffer.from('del\x7f'))).toContain('0x7f');
    expect(promptCannotTake(Buffer.alloc(MAX_PASSWORD_BYTES, 0x61))).toBeNull();
    expect(promptCannotTake(Buffer.alloc(MAX_PASSWORD_BYTES + 1, 0x61))).toContain(`${MAX_PASSWORD_BYTES}`);
  });
});

describe('promptYesNo', () => {
  async function answer(...keys: Array<string | number[]>): Promise<{ yes: boolean; output: string }> {
    const terminal = new FakeTerminal();
    const result = promptYesNo('Keep? [y/N] ', {
      input: terminal,
      output: { write: (written: string) => (terminal.output += written) },
    });
    terminal.type(...keys);
    return { yes: await result, output: terminal.output };
  }

  it('is yes only for y or yes, and shows what is typed', async () => {
    expect(await answer('y\r')).toEqual({ yes: true, output: 'Keep? [y/N] y\n' });
    expect((await answer('YES\r')).yes).toBe(true);
    expect((await answer('\r')).yes).toBe(false); // the default is no
    expect((await answer('n\r')).yes).toBe(false);
    expect((await answer('yx', [0x7f], '\r')).output).toBe('Keep? [y/N] yx\b \b\n');
  });
});
