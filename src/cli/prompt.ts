// The no-echo password prompt. The terminal goes into raw mode so typed bytes are never echoed and go
// straight into a buffer we allocate and wipe; we handle Enter, Backspace, Ctrl-U, Ctrl-C and Ctrl-D
// ourselves. The prompt text goes to stderr so stdout stays clean for --json.
import { closeSync, openSync, writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { VaultError } from '../container/errors.js';

/** Longest password accepted at the prompt, in UTF-8 bytes; more is ignored (and rung as a bell). */
export const MAX_PASSWORD_BYTES = 4096;

/**
 * The one rule for a password the prompt can take, so that a password chosen through --password-stdin
 * can also be typed later: at most MAX_PASSWORD_BYTES bytes, and no control character but TAB (the
 * prompt uses the others for editing: Enter, Backspace, Ctrl-U, Ctrl-C, Ctrl-D, escape sequences).
 * Returns why `password` breaks the rule, or null.
 */
export function promptCannotTake(password: Uint8Array): string | null {
  if (password.length > MAX_PASSWORD_BYTES) {
    return `it is ${password.length} bytes long; the password prompt takes at most ${MAX_PASSWORD_BYTES}`;
  }
  for (const byte of password) {
    if (!isPasswordByte(byte)) {
      return `it holds the control character 0x${byte.toString(16).padStart(2, '0')}, which cannot be typed at the password prompt`;
    }
  }
  return null;
}

function isPasswordByte(byte: number): boolean {
  return byte === 0x09 || (byte >= 0x20 && byte !== 0x7f);
}

interface RawInput {
  readonly isTTY?: boolean;
  setRawMode(mode: boolean): unknown;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'error', listener: (error?: Error) => void): unknown;
  removeListener(event: 'data', listener: (chunk: Buffer) => void): unknown;
  removeListener(event: 'end' | 'error', listener: (error?: Error) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

interface PromptStreams {
  input?: RawInput;
  output?: { write(text: string): unknown };
  /** Show what is typed (a y/N answer); passwords are never echoed. */
  echo?: boolean;
}

/** True when stdin is a terminal, i.e. a person can answer a prompt. */
export function stdinIsTerminal(): boolean {
  return isatty(0);
}

/**
 * Where the prompt text goes: stderr, unless stderr is redirected (`vault info x 2>log`) while we
 * read from the terminal; then straight to the terminal, so the person typing sees what is asked.
 */
let terminalOutput: { write(text: string): unknown } | null = null;

function promptOutput(): { write(text: string): unknown } {
  terminalOutput ??= openPromptOutput();
  return terminalOutput;
}

/** A line for the person at the prompt (why it asks again), where the prompt itself goes. */
export function promptNotice(text: string): void {
  promptOutput().write(`${text}\n`);
}

function openPromptOutput(): { write(text: string): unknown } {
  if (process.stderr.isTTY) return process.stderr;
  let fd: number;
  try {
    fd = openSync('/dev/tty', 'w');
  } catch {
    return process.stderr;
  }
  process.once('exit', () => closeSync(fd));
  return { write: (text: string) => writeSync(fd, text) };
}

let rawInputInUse: RawInput | null = null;
let exitHookInstalled = false;

/**
 * Writes `prompt` to stderr and reads one line from the terminal without echo. Resolves with a new
 * Buffer (Buffer.alloc'd, exactly the typed bytes, UTF-8); the caller wipes it. Rejects with
 * VaultError INTERRUPTED on Ctrl-C and MISSING_SECRET on Ctrl-D at an empty line.
 */
export function promptHidden(prompt: string, streams: PromptStreams = {}): Promise<Buffer> {
  const input = streams.input ?? (process.stdin as unknown as RawInput);
  const output = streams.output ?? promptOutput();
  const echo = streams.echo ?? false;
  if (!input.isTTY) {
    return Promise.reject(
      new VaultError('MISSING_SECRET', 'cannot prompt for a password: stdin is not a terminal', NO_TTY_HINT),
    );
  }
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // If anything ends the process mid-prompt, give the terminal back in its normal (echoing) mode.
    process.on('exit', () => rawInputInUse?.setRawMode(false));
  }

  const typed = Buffer.alloc(MAX_PASSWORD_BYTES);
  let length = 0;
  // Raw mode before the prompt shows: keys typed as soon as it appears must not be echoed.
  input.setRawMode(true);
  rawInputInUse = input;
  output.write(prompt);

  return new Promise<Buffer>((resolve, reject) => {
    let settled = false;
    const finish = (error: Error | null): void => {
      if (settled) return;
      settled = true;
      input.removeListener('data', onData);
      input.removeListener('end', onEnd);
      input.removeListener('error', onError);
      input.setRawMode(false);
      rawInputInUse = null;
      input.pause(); // lets the process exit once the command is done
      output.write('\n');
      if (error) {
        typed.fill(0);
        reject(error);
        return;
      }
      const password = Buffer.alloc(length);
      typed.copy(password, 0, 0, length);
      typed.fill(0);
      resolve(password);
    };

    const onData = (chunk: Buffer): void => {
      try {
        // An escape sequence (arrow keys, function keys) is one chunk: ignore it whole.
        if (chunk[0] === 0x1b) return;
        for (const byte of chunk) {
          if (byte === 0x0d || byte === 0x0a) {
            // Enter; anything typed after it is dropped
            finish(null);
            return;
          }
          if (byte === 0x03) {
            // Ctrl-C: raw mode turns it into a byte instead of SIGINT
            finish(interruptedAtPrompt());
            return;
          }
          if (byte === 0x04) {
            // Ctrl-D: end of input on an empty line, ignored otherwise (as a shell does)
            if (length === 0) {
              finish(endOfInputAtPrompt());
              return;
            }
            continue;
          }
          if (byte === 0x7f || byte === 0x08) {
            // Backspace: drop one whole UTF-8 character (its continuation bytes, then the lead byte).
            while (length > 0 && ((typed[length - 1] ?? 0) & 0xc0) === 0x80) typed[--length] = 0;
            if (length > 0) {
              typed[--length] = 0;
              if (echo) output.write('\b \b');
            }
            continue;
          }
          if (byte === 0x15) {
            // Ctrl-U: start over.
            typed.fill(0, 0, length);
            length = 0;
            continue;
          }
          if (!isPasswordByte(byte)) continue; // other control characters are not part of a password
          if (length === MAX_PASSWORD_BYTES) {
            output.write('\x07');
            continue;
          }
          typed[length++] = byte;
          if (echo && byte < 0x80) output.write(String.fromCharCode(byte));
        }
      } finally {
        chunk.fill(0);
      }
    };
    const onEnd = (): void => finish(endOfInputAtPrompt());
    const onError = (error?: Error): void =>
      finish(new VaultError('IO', `cannot read from the terminal: ${error?.message ?? 'unknown error'}`));

    input.on('data', onData);
    input.on('end', onEnd);
    input.on('error', onError);
    input.resume();
  });
}

/** Asks a yes/no question at the terminal (answer shown as typed); only "y" or "yes" is yes. */
export async function promptYesNo(question: string, streams: PromptStreams = {}): Promise<boolean> {
  const answer = await promptHidden(question, { ...streams, echo: true });
  const text = answer.toString('utf8').trim().toLowerCase();
  answer.fill(0);
  return text === 'y' || text === 'yes';
}

const NO_TTY_HINT = 'pipe the password with --password-stdin, or give a keyfile with -k <path>';

function interruptedAtPrompt(): VaultError {
  return new VaultError(
    'INTERRUPTED',
    'interrupted at the password prompt; nothing was changed',
    'run the command again when ready',
  );
}

function endOfInputAtPrompt(): VaultError {
  return new VaultError(
    'MISSING_SECRET',
    'no password entered (end of input at the prompt)',
    'type a password and press Enter, or give a keyfile with -k <path>',
  );
}
