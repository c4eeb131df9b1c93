// What a mount needs from the host: root (or --user), /dev/fuse, the system tools.
import { accessSync, constants } from 'node:fs';
import { VaultError } from './errors.js';
import { statOrNull } from './paths.js';
import { findTool } from './process.js';

/** Root, /dev/fuse and the tools a mount needs; one clear error for the first thing missing. */
export function checkSystem(tools: readonly string[], options: { user?: boolean } = {}): void {
  if (!options.user && process.getuid?.() !== 0) {
    throw new VaultError(
      'NEEDS_SYSTEM',
      'mounting needs root rights (FUSE, loop devices and mount)',
      'run the command with sudo; an ext4 vault can also be mounted without root: vault mount --user',
    );
  }
  checkFuseDevice(options);
  for (const tool of tools) {
    if (!findTool(tool)) {
      throw new VaultError(
        'NEEDS_SYSTEM',
        `the system tool ${tool} is missing`,
        'install util-linux, fuse and e2fsprogs (scripts/setup.sh does it on Debian)',
      );
    }
  }
}

/** /dev/fuse is there and usable by us; a clear error (and for --user, who can fix it) otherwise. */
export function checkFuseDevice(options: { user?: boolean } = {}): void {
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    if (options.user && process.getuid?.() !== 0 && statOrNull('/dev/fuse')) {
      throw new VaultError(
        'NEEDS_SYSTEM',
        '/dev/fuse is not accessible to you',
        'ask an admin to install fuse and give users access to /dev/fuse (Debian makes it mode 0666: chmod 0666 /dev/fuse)',
      );
    }
    throw new VaultError(
      'NEEDS_SYSTEM',
      '/dev/fuse is missing',
      'load the fuse module (modprobe fuse); in a container, pass --device /dev/fuse',
    );
  }
}
