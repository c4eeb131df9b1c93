// The pipe between `vault mount` and its daemon (fd 3 of the daemon, a socket pair): the CLI sends one
// JSON line of settings followed by the raw secret material (never argv, env or a file); the daemon
// answers with JSON lines: `ready` once everything is mounted, or `error` after undoing every step.
import type { VaultErrorCode } from '../container/errors.js';
import type { MountPlan } from './model.js';
import type { MountState } from './state.js';

/** The plan (model.ts) and how many bytes of secret follow the settings line. */
export interface DaemonSettings extends MountPlan {
  /** Bytes of secret material that follow the settings line (both secrets with protectHidden). */
  secretLength: number;
  /** The last this-many of those bytes are the hidden volume's secret (--protect-hidden); 0 without. */
  hiddenSecretLength: number;
}

export type DaemonMessage =
  | { type: 'ready'; state: MountState; warnings: string[] }
  | {
      type: 'error';
      code: VaultErrorCode;
      message: string;
      hint: string | null;
      /** The library's reason and its values, so the CLI words the hint (src/cli/hints.ts). */
      reason?: string;
      details?: Record<string, string | number>;
    };

/**
 * Splits what arrives on the daemon's fd 3 into the settings line and `secretLength` bytes of secret.
 * Every chunk Node handed us is wiped after copying.
 */
export function readSettingsAndSecret(
  stream: NodeJS.ReadableStream,
): Promise<{ settings: DaemonSettings; secret: Buffer }> {
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    let settings: DaemonSettings | null = null;
    let secret: Buffer | null = null;
    let filled = 0;
    const cleanup = (): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
    };
    const finish = (): void => {
      cleanup();
      stream.pause();
      if (settings && secret) resolve({ settings, secret });
    };
    const take = (chunk: Buffer): void => {
      if (!settings) {
        const joined = Buffer.concat([head, chunk]);
        head.fill(0);
        const newline = joined.indexOf(0x0a);
        if (newline === -1) {
          head = joined;
          return;
        }
        settings = JSON.parse(joined.subarray(0, newline).toString('utf8')) as DaemonSettings;
        secret = Buffer.alloc(settings.secretLength);
        const rest = joined.subarray(newline + 1);
        const used = rest.copy(secret, 0, 0, Math.min(rest.length, secret.length));
        filled = used;
        joined.fill(0);
        head = Buffer.alloc(0);
      } else if (secret) {
        filled += chunk.copy(secret, filled, 0, Math.min(chunk.length, secret.length - filled));
      }
    };
    const onData = (chunk: Buffer): void => {
      try {
        take(chunk);
      } catch (error) {
        cleanup();
        reject(error);
        return;
      } finally {
        chunk.fill(0);
      }
      if (settings && secret && filled === secret.length) finish();
    };
    const onEnd = (): void => {
      cleanup();
      secret?.fill(0);
      reject(new Error('the mount command went away before sending its settings'));
    };
    const onError = (error: Error): void => {
      cleanup();
      secret?.fill(0);
      reject(error);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
  });
}

/** Reads newline-separated JSON messages from the daemon until the first `ready` or `error`. */
export function readDaemonMessage(stream: NodeJS.ReadableStream): Promise<DaemonMessage | null> {
  return new Promise((resolve) => {
    let text = '';
    const done = (message: DaemonMessage | null): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onEnd);
      resolve(message);
    };
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      let newline = text.indexOf('\n');
      while (newline !== -1) {
        const line = text.slice(0, newline);
        text = text.slice(newline + 1);
        try {
          const message = JSON.parse(line) as DaemonMessage;
          if (message.type === 'ready' || message.type === 'error') {
            done(message);
            return;
          }
        } catch {}
        newline = text.indexOf('\n');
      }
    };
    const onEnd = (): void => done(null);
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onEnd);
  });
}
