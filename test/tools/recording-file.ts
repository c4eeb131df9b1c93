// TEST ONLY: an OpenContainerFile over the real files that records what the library does with them
// (opens, writes, syncs, timestamp changes, closes), optionally with a hook that runs at open time
// and a write that fails. For properties like "a refused call opens the file only for reading",
// "every write is synced before the file is closed", "each file is closed exactly once".
import type { ContainerFile, OpenContainerFile } from '../../src/container/file.js';
import { openContainerFile } from '../../src/container/file.js';

export type FileEvent =
  | { op: 'open'; path: string; mode: 'read' | 'write' | 'create' }
  | { op: 'write'; path: string; offset: number; length: number }
  | { op: 'sync' | 'setTimes' | 'close'; path: string };

export interface RecordingOptions {
  /** Runs after the real open, before the library gets the file. */
  onOpen?: (path: string, mode: 'read' | 'write' | 'create') => Promise<void> | void;
  /** When it returns an error for a write, that write fails with it instead of landing. */
  failWrite?: (offset: number, length: number) => Error | null;
}

export interface Recording {
  open: OpenContainerFile;
  events: FileEvent[];
}

export function recordingOpener(options: RecordingOptions = {}): Recording {
  const events: FileEvent[] = [];
  const open: OpenContainerFile = async (path, mode) => {
    const real = await openContainerFile(path, mode);
    events.push({ op: 'open', path, mode });
    await options.onOpen?.(path, mode);
    const file: ContainerFile = {
      path: real.path,
      writable: real.writable,
      ...(real.fd === undefined ? {} : { fd: real.fd }),
      size: () => real.size(),
      identity: () => real.identity(),
      read: (buffer, position) => real.read(buffer, position),
      async write(buffer, position) {
        const failure = options.failWrite?.(position, buffer.length);
        if (failure) throw failure;
        events.push({ op: 'write', path, offset: position, length: buffer.length });
        await real.write(buffer, position);
      },
      async sync() {
        events.push({ op: 'sync', path });
        await real.sync();
      },
      async setTimes(atime, mtime) {
        events.push({ op: 'setTimes', path });
        await real.setTimes(atime, mtime);
      },
      allocate: (length) => real.allocate(length),
      async close() {
        events.push({ op: 'close', path });
        await real.close();
      },
    };
    return file;
  };
  return { open, events };
}

/** How many times each opened file was closed (one entry per open, in order). */
export function closesPerOpen(events: FileEvent[]): number[] {
  const counts: number[] = [];
  let current = -1;
  for (const event of events) {
    if (event.op === 'open') counts[++current] = 0;
    else if (event.op === 'close' && current >= 0) counts[current] = (counts[current] ?? 0) + 1;
  }
  return counts;
}

/** The writes that no later sync covers before the file was (last) closed: empty when all are durable. */
export function unsyncedWrites(events: FileEvent[]): FileEvent[] {
  let pending: FileEvent[] = [];
  for (const event of events) {
    if (event.op === 'write') pending.push(event);
    else if (event.op === 'sync') pending = [];
  }
  return pending;
}

/** An error as node:fs reports it (e.g. ENOSPC), for failWrite. */
export function errnoError(code: string, message = code): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}
