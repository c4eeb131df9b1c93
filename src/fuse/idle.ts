// vault mount --idle-dismount: the daemon dismounts its vault once no I/O reached it for a while, as
// VeraCrypt's auto-dismount does. Activity is the bridge's request counter (native/fuse3.c counts every
// read, write and sync the kernel sends); reads the page cache answers never get here. A filesystem
// that is in use (an open file, a shell inside it) is not dismounted: it is tried again later.

/** What the watch reads at each tick: requests served so far, and how many are being served now. */
export interface Activity {
  requests: number;
  inFlight: number;
}

export interface IdleWatchOptions {
  /** Dismount after this long without a request. */
  idleMs: number;
  activity(): Activity;
  /**
   * Dismounts the way `vault dismount` does; resolves to null once done, or to why it was refused
   * (the filesystem is in use) with everything left as it was.
   */
  dismount(): Promise<string | null>;
  log(message: string): void;
  /** Milliseconds on a monotonic clock (tests pass a fake one). */
  now?: () => number;
}

/** How often activity is looked at: a quarter of the idle time, from 250 ms to 10 s. */
export function pollInterval(idleMs: number): number {
  return Math.min(Math.max(Math.floor(idleMs / 4), 250), 10_000);
}

/** After a refused dismount, the next attempt comes this much later (at most a minute). */
export function retryInterval(idleMs: number): number {
  return Math.min(Math.max(idleMs, 1000), 60_000);
}

export class IdleWatch {
  private readonly now: () => number;
  private lastRequests: number;
  private lastActive: number;
  private nextAttempt = 0;
  private refusedSince = false;
  private running = false;
  private done = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: IdleWatchOptions) {
    this.now = options.now ?? (() => performance.now());
    this.lastRequests = options.activity().requests;
    this.lastActive = this.now();
  }

  /** Looks at the activity once and dismounts when idle long enough; true once dismounted. */
  async tick(): Promise<boolean> {
    if (this.done || this.running) return this.done;
    const now = this.now();
    const { requests, inFlight } = this.options.activity();
    if (requests !== this.lastRequests || inFlight > 0) {
      this.lastRequests = requests;
      this.lastActive = now;
      this.refusedSince = false;
      return false;
    }
    if (now - this.lastActive < this.options.idleMs || now < this.nextAttempt) return false;
    this.running = true;
    try {
      const idleSeconds = Math.round((now - this.lastActive) / 1000);
      let refused: string | null;
      try {
        refused = await this.options.dismount();
      } catch (error) {
        refused = `dismounting failed (${error instanceof Error ? error.message : String(error)})`;
      }
      if (refused === null) {
        this.options.log(`no I/O for ${idleSeconds} s (--idle-dismount): dismounted`);
        this.done = true;
        this.stop();
        return true;
      }
      const retryMs = retryInterval(this.options.idleMs);
      if (!this.refusedSince) {
        this.options.log(
          `no I/O for ${idleSeconds} s (--idle-dismount), but ${refused}: staying mounted, trying again every ${Math.round(retryMs / 1000)} s`,
        );
      }
      this.refusedSince = true;
      this.nextAttempt = this.now() + retryMs;
      return false;
    } finally {
      this.running = false;
    }
  }

  /** Ticks every pollInterval(idleMs) until dismounted or stopped. */
  start(): void {
    this.stop();
    this.timer = setInterval(() => {
      this.tick().catch((error) => this.options.log(`idle watch failed: ${String(error)}`));
    }, pollInterval(this.options.idleMs));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
