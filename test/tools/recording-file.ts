// TEST ONLY: ContainerFiles around the real ones that record what the library does with them, through
// the library's own I/O seam rather than by patching code.
// - recordingFile(real): every call of one file in order (with the buffer it was handed); a test can hold
//   a read or write back, or fail it: to check what a volume writes, syncs and wipes, and its I/O order.
// - recordingOpener(): an OpenContainerFile whose files log opens, writes, syncs, timestamp changes and
//   closes across all files, optionally with a hook at open time and a write that fails: for properties
//   like "a refused call opens the file only for reading", "every write is synced before the file is
//   closed", "each file is closed exactly once".
import type { ContainerFile, OpenContainerFile } from '../../src/container/file.js';
import { openContainerFile } from '../../src/container/file.js';

export interface FileCall {
  op: 'read' | 'write' | 'sync' | 'setTimes' | 'close';
  position?: number;
  buffer?: Uint8Array;
  /** When the call finished (its turn among all finished calls); null while it runs. */
  finished: number | null;
}

export interface RecordingFile extends ContainerFile {
  readonly calls: FileCall[];
  /** Runs before a read or write reaches the real file; a rejection fails the call. */
  before: ((call: FileCall) => Promise<void> | void) | null;
}

export interface RecordingFileOptions {
  /** false leaves out the descriptor (a file no native data path can use). */
  withFd?: boolean;
  /** Runs before every call reaches the real file (after `before`); a throw fails the call. */
  onCall?: (call: FileCall) => void;
}

export function recordingFile(real: ContainerFile, options: RecordingFileOptions = {}): RecordingFile {
  const calls: FileCall[] = [];
  let finishedCount = 0;
  const file: RecordingFile = {
    path: real.path,
    writable: real.writable,
    calls,
    before: null,
    size: () => real.size(),
    identity: () => real.identity(),
    allocate: (length) => real.allocate(length),
    read: (buffer, position) =>
      run({ op: 'read', position, buffer, finished: null }, () => real.read(buffer, position)),
    write: (buffer, position) =>
      run({ op: 'write', position, buffer, finished: null }, () => real.write(buffer, position)),
    sync: () => run({ op: 'sync', finished: null }, () => real.sync()),
    setTimes: (atimeMs, mtimeMs) =>
      run({ op: 'setTimes', finished: null }, () => real.setTimes(atimeMs, mtimeMs)),
    close: () => run({ op: 'close', finished: null }, () => real.close()),
  };
  if (options.withFd !== false && real.fd !== undefined)
    Object.defineProperty(file, 'fd', { value: real.fd, enumerable: true });
  async function run(call: FileCall, action: () => Promise<void>): Promise<void> {
    calls.push(call);
    if (file.before && (call.op === 'read' || call.op === 'write')) await file.before(call);
    options.onCall?.(call);
    await action();
    call.finished = finishedCount++;
  }
  return file;
}

/** A promise a test resolves by hand: to hold a call back until the test lets it go. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open = () => {};
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

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
    return recordingFile(real, {
      onCall(call) {
        if (call.op === 'read') return;
        if (call.op !== 'write') {
          events.push({ op: call.op, path });
          return;
        }
        const offset = call.position ?? 0;
        const length = call.buffer?.length ?? 0;
        const failure = options.failWrite?.(offset, length);
        if (failure) throw failure;
        events.push({ op: 'write', path, offset, length });
      },
    });
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
