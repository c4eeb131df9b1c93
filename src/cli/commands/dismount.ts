// `vault dismount <mountpoint|file>` and `--all`: unmount the filesystem (refusing while it is in use,
// naming the processes), detach the loop device, stop the daemon (it flushes and wipes its keys), and
// clean up what a crashed daemon left behind.
import type { Command } from 'commander';
import { VaultError } from '../../container/errors.js';
import { dismountVault } from '../../fuse/dismount.js';
import { allMounted, findMounted, needsRoot, rootVaultIds } from '../../fuse/list.js';
import type { MountState } from '../../fuse/state.js';
import { reportError, warn } from '../report.js';
import { DEFAULT_VAULTTAB } from '../vaulttab.js';

interface DismountOptions {
  all?: boolean;
  force?: boolean;
  tab?: string[] | boolean;
  tabFile?: string;
}

export function register(program: Command): void {
  program
    .command('dismount')
    .alias('unmount')
    .description('unmount a vault: filesystem, loop device, FUSE bridge; the daemon wipes its keys and exits')
    .argument('[target]', 'the mountpoint, the vault file (any path to it) or the block file')
    .option('-a, --all', 'dismount every mounted vault')
    .option('-f, --force', 'dismount even while files are open: detach now, close when the last user lets go')
    .option(
      '--tab [vaults...]',
      `dismount the vaults listed in ${DEFAULT_VAULTTAB} that are mounted (all, or those named), last line first`,
    )
    .option('--tab-file <path>', `read this vaulttab instead of ${DEFAULT_VAULTTAB} (implies --tab)`)
    .addHelpText(
      'after',
      '\nExamples:\n  sudo vault dismount /media/vault/secret\n  sudo vault dismount secret.vol\n  sudo vault dismount --all\n  sudo vault dismount --tab            # what /etc/vaulttab lists',
    )
    .action(async (target: string | undefined, options: DismountOptions) => {
      const force = options.force ?? false;
      if (options.tab !== undefined || options.tabFile !== undefined) {
        if (target !== undefined || options.all) {
          throw new VaultError(
            'USAGE',
            '--tab does not go with a target or --all',
            'vault dismount --tab, or vault dismount --tab NAME... (names, files or mountpoints of the vaulttab)',
          );
        }
        const { dismountTab } = await import('../tab-mount.js');
        await dismountTab({
          tabFile: options.tabFile ?? DEFAULT_VAULTTAB,
          selectors: Array.isArray(options.tab) ? options.tab : [],
          force,
        });
        return;
      }
      if (options.all) {
        if (target !== undefined)
          throw new VaultError('USAGE', 'give a target or --all, not both', 'see `vault dismount --help`');
        await dismountAll(force);
        return;
      }
      if (target === undefined) {
        throw new VaultError('USAGE', 'missing the mountpoint or vault file to dismount', 'or use --all');
      }
      report(await dismountVault(await findMounted(target), { force }));
    });
}

function report(result: Awaited<ReturnType<typeof dismountVault>>): void {
  if (result.pendingHolders) {
    warn(
      `${result.state.mountpoint ?? result.state.blockFile} is detached but still used by ${result.pendingHolders}; ` +
        'the vault is written back and closed when they exit (see `vault list`)',
    );
  }
  if (result.state.hiddenProtection === 'tripped') {
    warn(
      'hidden volume protection refused writes to the outer volume during this mount: what was written ' +
        'after the first refusal did not reach the vault; the hidden volume is intact',
    );
  }
  process.stdout.write(`dismounted ${describe(result.state)}\n`);
}

function describe(state: MountState): string {
  return state.mountpoint ? `${state.file} from ${state.mountpoint}` : state.file;
}

async function dismountAll(force: boolean): Promise<void> {
  let firstError: unknown = null;
  const states = await allMounted();
  if (states.length === 0 && rootVaultIds().length > 0)
    throw needsRoot('dismounting the vaults root mounted', 'dismount --all');
  for (const state of states) {
    try {
      report(await dismountVault(state, { force }));
    } catch (error) {
      // Go on with the others; the exit code is that of the first failure.
      if (firstError === null) firstError = error;
      else reportError(error);
    }
  }
  if (firstError !== null) throw firstError;
}
