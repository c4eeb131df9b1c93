// Which processes hold a mount or a file open (what fuser does), for "busy" messages.
import { readFileSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';

export interface Holder {
  pid: number;
  command: string;
}

function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

function within(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith('/') ? root : `${root}/`);
}

/**
 * Processes that use anything under `root` (a mountpoint) or the file `root` itself: open files,
 * cwd, root directory, memory maps. Reads /proc like fuser does; our own process is left out.
 */
export async function findHolders(root: string): Promise<Holder[]> {
  const holders: Holder[] = [];
  let pids: string[] = [];
  try {
    pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name));
  } catch {
    return holders;
  }
  for (const pidText of pids) {
    const pid = Number(pidText);
    if (pid === process.pid) continue;
    if (await usesPath(pid, root)) holders.push({ pid, command: processName(pid) });
  }
  return holders;
}

async function usesPath(pid: number, root: string): Promise<boolean> {
  const links = [`/proc/${pid}/cwd`, `/proc/${pid}/root`, `/proc/${pid}/exe`];
  try {
    for (const fd of await readdir(`/proc/${pid}/fd`)) links.push(`/proc/${pid}/fd/${fd}`);
  } catch {}
  for (const link of links) {
    try {
      const target = await readlink(link);
      if (within(target.replace(/ \(deleted\)$/, ''), root)) return true;
    } catch {}
  }
  try {
    const maps = await readFile(`/proc/${pid}/maps`, 'utf8');
    for (const line of maps.split('\n')) {
      const path = line.split(/\s+/).slice(5).join(' ');
      if (path && within(path.replace(/ \(deleted\)$/, ''), root)) return true;
    }
  } catch {}
  return false;
}

export function describeHolders(holders: readonly Holder[]): string {
  return holders.map((holder) => `${holder.command} (pid ${holder.pid})`).join(', ');
}
