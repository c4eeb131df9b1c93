// The daemon's mount session (src/fuse/session.ts) and the one teardown (attachments.ts), without
// spawning a daemon or mounting anything: attachments are recorded fakes, the state lives in memory.
import { describe, expect, it } from 'vitest';
import { isVaultError, VaultError } from '../../src/container/errors.js';
import { type Attachment, type Teardown, teardown } from '../../src/fuse/attachments.js';
import { MountSession } from '../../src/fuse/session.js';
import { type MountState, newMountState } from '../../src/fuse/state.js';

function plan() {
  return {
    file: '/srv/data.vol',
    dev: 2049,
    ino: 77,
    id: '2049-77',
    mountpoint: '/mnt/data',
    owner: { uid: 1000, gid: 1000 },
    readOnly: false,
    noFilesystem: false,
    preserveTimestamps: false,
    costLevel: 12,
    device: 'vault' as const,
    loopDirectIo: true,
    partition: null,
    user: false,
    fsOptions: [],
    idleDismountMs: null,
    createdMountpoint: true,
  };
}

/** A fake attachment that writes what happens to it into `events`. */
function fake(
  name: string,
  events: string[],
  behaviour: {
    failUp?: boolean;
    busy?: boolean;
    failDown?: boolean;
    present?: () => boolean;
    record?: Partial<MountState>;
  } = {},
): Attachment {
  return {
    kind: name,
    async up(context) {
      events.push(`up ${name}`);
      if (behaviour.record) await context.record(behaviour.record);
      if (behaviour.failUp) throw new VaultError('IO', `${name} failed`);
    },
    async down(context: Teardown) {
      events.push(`down ${name} (${context.busy})`);
      if (behaviour.busy) {
        if (context.busy === 'refuse') throw new VaultError('BUSY', `${name} is in use`);
        context.pendingHolders = 'less (pid 42)';
      }
      if (behaviour.failDown) throw new Error(`${name} could not be taken down`);
    },
    ...(behaviour.present ? { present: behaviour.present } : {}),
  };
}

function makeSession() {
  const written: MountState[] = [];
  const logged: string[] = [];
  const session = new MountSession({
    log: (message) => logged.push(message),
    writeState: async (state) => {
      written.push(state);
    },
  });
  return { session, written, logged };
}

describe('newMountState: the one place a mount record is built', () => {
  it('records the plan as starting, with the block file under the state directory', () => {
    const state = newMountState(plan(), 4242);
    expect(state).toMatchObject({
      id: '2049-77',
      file: '/srv/data.vol',
      mountpoint: '/mnt/data',
      createdMountpoint: true,
      loopDevice: null,
      pid: 4242,
      phase: 'starting',
    });
    expect(state.blockFile).toMatch(/\/2049-77\/fuse\/volume$/);
    expect(state.user).toBeUndefined();
  });

  it('--no-filesystem has no mountpoint; --user is recorded so that dismount needs no root', () => {
    expect(newMountState({ ...plan(), noFilesystem: true }, 1).mountpoint).toBeNull();
    expect(newMountState({ ...plan(), user: true }, 1).user).toBe(true);
  });
});

describe('teardown', () => {
  it('takes the stack down last first', async () => {
    const events: string[] = [];
    await teardown([fake('record', events), fake('bridge', events), fake('loop', events)], { busy: 'lazy' });
    expect(events).toEqual(['down loop (lazy)', 'down bridge (lazy)', 'down record (lazy)']);
  });

  it('refusing, a busy filesystem stops it (BUSY) and nothing below is touched; lazily, it is detached and named', async () => {
    const events: string[] = [];
    const stack = [fake('daemon', events), fake('loop', events, { busy: true })];
    const refused = await teardown(stack, { busy: 'refuse' }).catch((error: unknown) => error);
    expect(isVaultError(refused, 'BUSY')).toBe(true);
    expect(events).toEqual(['down loop (refuse)']);
    events.length = 0;
    const { pendingHolders } = await teardown(stack, { busy: 'lazy' });
    expect(pendingHolders).toBe('less (pid 42)');
    expect(events).toEqual(['down loop (lazy)', 'down daemon (lazy)']);
  });

  it('lazily, a failing attachment does not keep the others (the keys) from going down; its error comes last', async () => {
    const events: string[] = [];
    const logged: string[] = [];
    const stack = [fake('device', events), fake('bridge', events, { failDown: true }), fake('loop', events)];
    await expect(teardown(stack, { busy: 'lazy', log: (line) => logged.push(line) })).rejects.toThrow(
      'bridge could not be taken down',
    );
    expect(events).toEqual(['down loop (lazy)', 'down bridge (lazy)', 'down device (lazy)']);
    expect(logged.join('\n')).toContain('taking down the bridge failed');
  });
});

describe('MountSession', () => {
  it('records each step, marks the mount, and stops once however often it is asked', async () => {
    const { session, written, logged } = makeSession();
    const events: string[] = [];
    await session.begin(newMountState(plan(), 7), fake('record', events));
    await session.attach(fake('device', events));
    await session.attach(fake('loop', events, { record: { loopDevice: '/dev/loop7' } }));
    await session.markMounted();
    expect(session.state).toMatchObject({ loopDevice: '/dev/loop7', phase: 'mounted' });
    expect(written.map((state) => state.phase)).toEqual(['starting', 'starting', 'mounted']);
    expect(session.isMounted).toBe(true);

    const first = session.stop('SIGTERM');
    const second = session.stop('SIGINT');
    await Promise.all([first, second]);
    expect(events).toEqual([
      'up device',
      'up loop',
      'down loop (lazy)',
      'down device (lazy)',
      'down record (lazy)',
    ]);
    expect(written.at(-1)?.phase).toBe('stopping');
    expect(logged.filter((line) => line.startsWith('stopping'))).toEqual(['stopping (SIGTERM)']);
    expect(session.isMounted).toBe(false);
  });

  it('a signal during start-up is noticed at the next step (INTERRUPTED); what was up is taken down', async () => {
    const { session } = makeSession();
    const events: string[] = [];
    await session.begin(newMountState(plan(), 7), fake('record', events));
    await session.attach(fake('device', events));
    expect(session.requestStop()).toBe(false); // not mounted yet: start-up undoes it
    const interrupted = await session.attach(fake('bridge', events)).catch((error: unknown) => error);
    expect(isVaultError(interrupted, 'INTERRUPTED')).toBe(true);
    await session.stop('mount failed');
    // The bridge never came up but is on the stack: its down() is safe and runs.
    expect(events).toEqual(['up device', 'down bridge (lazy)', 'down device (lazy)', 'down record (lazy)']);
  });

  it('a step that fails half-way is taken down with the rest', async () => {
    const { session } = makeSession();
    const events: string[] = [];
    await session.begin(newMountState(plan(), 7), fake('record', events));
    await expect(session.attach(fake('loop', events, { failUp: true }))).rejects.toThrow('loop failed');
    await session.stop('mount failed');
    expect(events).toEqual(['up loop', 'down loop (lazy)', 'down record (lazy)']);
  });

  it('a signal once mounted asks for the stop to run now', async () => {
    const { session } = makeSession();
    await session.begin(newMountState(plan(), 7), fake('record', []));
    await session.markMounted();
    expect(session.requestStop()).toBe(true);
  });

  it('notices a filesystem unmounted from outside (a plain umount), only once mounted', async () => {
    const { session } = makeSession();
    let mounted = true;
    await session.begin(newMountState(plan(), 7), fake('record', []));
    await session.attach(fake('loop', [], { present: () => mounted }));
    mounted = false;
    expect(session.filesystemGone()).toBe(false); // still starting: not the watcher's business
    mounted = true;
    await session.markMounted();
    expect(session.filesystemGone()).toBe(false);
    mounted = false;
    expect(session.filesystemGone()).toBe(true);
    const gone = new Promise<void>((resolveGone) => session.watchFilesystem(5, resolveGone));
    await gone;
    await session.stop('filesystem unmounted');
    expect(session.filesystemGone()).toBe(false);
  });
});
