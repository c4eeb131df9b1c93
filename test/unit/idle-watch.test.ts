// --idle-dismount's decision (src/fuse/idle.ts) on a fake clock and a fake request counter, and the
// session's dismount that refuses while busy (src/fuse/session.ts dismountIfUnused) with fake
// attachments. The real thing, with FUSE and ext4, is test/e2e/idle-dismount.test.ts.
import { describe, expect, it } from 'vitest';
import { VaultError } from '../../src/container/errors.js';
import type { Attachment } from '../../src/fuse/attachments.js';
import { IdleWatch, pollInterval, retryInterval } from '../../src/fuse/idle.js';
import { MountSession } from '../../src/fuse/session.js';
import { type MountState, newMountState } from '../../src/fuse/state.js';

function setup(idleMs: number, answers: Array<string | null>) {
  const clock = { now: 0 };
  const activity = { requests: 0, inFlight: 0 };
  const attempts: number[] = [];
  const logs: string[] = [];
  const watch = new IdleWatch({
    idleMs,
    activity: () => ({ ...activity }),
    dismount: async () => {
      attempts.push(clock.now);
      return answers.shift() ?? null;
    },
    log: (message) => logs.push(message),
    now: () => clock.now,
  });
  return { clock, activity, attempts, logs, watch };
}

describe('IdleWatch', () => {
  it('dismounts once no request came for the idle time, not before', async () => {
    const s = setup(2000, []);
    s.clock.now = 1999;
    expect(await s.watch.tick()).toBe(false);
    s.clock.now = 2000;
    expect(await s.watch.tick()).toBe(true);
    expect(s.attempts).toEqual([2000]);
    expect(s.logs).toEqual(['no I/O for 2 s (--idle-dismount): dismounted']);
    // Done: never again.
    s.clock.now = 10_000;
    expect(await s.watch.tick()).toBe(true);
    expect(s.attempts).toHaveLength(1);
  });

  it('each request, and a request still in flight, starts the idle time again', async () => {
    const s = setup(2000, []);
    s.clock.now = 1500;
    s.activity.requests = 3;
    await s.watch.tick();
    s.clock.now = 3000;
    expect(await s.watch.tick()).toBe(false);
    s.activity.inFlight = 1; // one slow request, counted long ago, still being served
    s.clock.now = 4000;
    expect(await s.watch.tick()).toBe(false);
    s.activity.inFlight = 0;
    s.clock.now = 5999;
    expect(await s.watch.tick()).toBe(false);
    s.clock.now = 6000;
    expect(await s.watch.tick()).toBe(true);
    expect(s.attempts).toEqual([6000]);
  });

  it('busy: stays mounted, says so once, tries again after the retry interval', async () => {
    const s = setup(2000, ['/mnt/x is in use by bash (pid 7)', '/mnt/x is in use by bash (pid 7)', null]);
    s.clock.now = 2000;
    expect(await s.watch.tick()).toBe(false);
    s.clock.now = 2000 + retryInterval(2000) - 1;
    expect(await s.watch.tick()).toBe(false);
    s.clock.now = 2000 + retryInterval(2000);
    expect(await s.watch.tick()).toBe(false);
    s.clock.now = 2000 + 2 * retryInterval(2000);
    expect(await s.watch.tick()).toBe(true);
    expect(s.attempts).toEqual([2000, 4000, 6000]);
    expect(s.logs).toEqual([
      'no I/O for 2 s (--idle-dismount), but /mnt/x is in use by bash (pid 7): staying mounted, trying again every 2 s',
      'no I/O for 6 s (--idle-dismount): dismounted',
    ]);
  });

  it('a failing dismount is logged and tried again later, not at every tick', async () => {
    const s = setup(1000, []);
    let calls = 0;
    const watch = new IdleWatch({
      idleMs: 1000,
      activity: () => ({ requests: 0, inFlight: 0 }),
      dismount: async () => {
        calls += 1;
        throw new Error('umount: I/O error');
      },
      log: (message) => s.logs.push(message),
      now: () => s.clock.now,
    });
    for (const now of [1000, 1250, 1500, 1999]) {
      s.clock.now = now;
      expect(await watch.tick()).toBe(false);
    }
    expect(calls).toBe(1);
    expect(s.logs[0]).toMatch(/dismounting failed \(umount: I\/O error\): staying mounted/);
  });

  it('polls at a quarter of the idle time, from 250 ms to 10 s; retries at most every minute', () => {
    expect(pollInterval(2000)).toBe(500);
    expect(pollInterval(100)).toBe(250);
    expect(pollInterval(3_600_000)).toBe(10_000);
    expect(retryInterval(2000)).toBe(2000);
    expect(retryInterval(3_600_000)).toBe(60_000);
  });
});

describe('MountSession.dismountIfUnused', () => {
  function session(busy: boolean) {
    const events: string[] = [];
    const saved: MountState[] = [];
    const s = new MountSession({
      log: (message) => events.push(`log ${message}`),
      writeState: async (state) => {
        saved.push(state);
      },
    });
    const fake = (name: string, refuse = false): Attachment => ({
      kind: name,
      async up() {},
      async down(context) {
        events.push(`down ${name} (${context.busy})`);
        if (refuse && context.busy === 'refuse')
          throw new VaultError('BUSY', `/mnt/${name} is in use by less`);
      },
    });
    return { s, events, fake, busy };
  }

  const state = newMountState(
    {
      file: '/srv/a.vol',
      dev: 1,
      ino: 2,
      id: '1-2',
      mountpoint: '/mnt/a',
      owner: { uid: 0, gid: 0 },
      readOnly: false,
      noFilesystem: false,
      preserveTimestamps: false,
      costLevel: 12,
      device: 'vault',
      loopDirectIo: true,
      partition: null,
      user: false,
      fsOptions: [],
      idleDismountMs: 2000,
      createdMountpoint: false,
    },
    1,
  );

  it('records the idle time in the mount state', () => {
    expect(state.idleDismountMs).toBe(2000);
  });

  it('busy: refuses at the filesystem and leaves everything mounted', async () => {
    const { s, events, fake } = session(true);
    await s.begin(state, fake('record'));
    await s.attach(fake('bridge'));
    await s.attach(fake('fs', true));
    await s.markMounted();
    expect(await s.dismountIfUnused('idle')).toBe('/mnt/fs is in use by less');
    expect(events.filter((event) => event.startsWith('down'))).toEqual(['down fs (refuse)']);
    expect(s.isMounted).toBe(true);
  });

  it('while a stop is under way (a signal): resolves only once that stop has finished', async () => {
    const { s, events, fake } = session(false);
    let release = (): void => {};
    const slow: Attachment = {
      kind: 'slow',
      async up() {},
      down: () =>
        new Promise<void>((resolveDown) => {
          events.push('down slow (started)');
          release = () => {
            events.push('down slow (done)');
            resolveDown();
          };
        }),
    };
    await s.begin(state, fake('record'));
    await s.attach(slow);
    await s.markMounted();
    const stopping = s.stop('SIGTERM');
    let resolved = false;
    const idle = s.dismountIfUnused('idle').then((result) => {
      resolved = true;
      return result;
    });
    await new Promise((resolveTick) => setTimeout(resolveTick, 20));
    expect(resolved).toBe(false);
    release();
    expect(await idle).toBeNull();
    await stopping;
    expect(events).toContain('down slow (done)');
  });

  it('not busy: the filesystem as dismount would, then the whole stack', async () => {
    const { s, events, fake } = session(false);
    await s.begin(state, fake('record'));
    await s.attach(fake('bridge'));
    await s.attach(fake('fs'));
    await s.markMounted();
    expect(await s.dismountIfUnused('idle')).toBeNull();
    expect(events.filter((event) => event.startsWith('down'))).toEqual([
      'down fs (refuse)',
      'down fs (lazy)',
      'down bridge (lazy)',
      'down record (lazy)',
    ]);
    expect(s.isMounted).toBe(false);
    expect(events).toContain('log stopping (idle)');
  });
});
