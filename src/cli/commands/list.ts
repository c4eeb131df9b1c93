// `vault list [--json]`: one row per mounted vault, from the state directories under /run/vault; a vault
// whose daemon died (or whose FUSE endpoint is gone) shows as broken until `vault dismount` cleans it up.
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { listVaults, needsRoot, rootVaultIds } from '../../fuse/list.js';
import { formatDuration } from '../duration.js';
import { printJson, printTable } from '../output.js';
import { warn } from '../report.js';
import { formatSize } from '../size.js';

export function register(program: Command): void {
  program
    .command('list')
    .description(
      'list mounted vaults: file, mountpoint, filesystem, size, block file, loop device, read-only, daemon pid, state',
    )
    .option('--json', 'print a JSON array (schema in docs/CLI.md)')
    .action(async (options: { json?: boolean }) => {
      const listed = await listVaults();
      // A user without root cannot see root's vaults (/run/vault is root's): say so, never "none".
      const ofRoot = rootVaultIds().length;
      if (ofRoot > 0 && listed.length === 0) {
        throw needsRoot(
          ofRoot === 1
            ? 'a vault is mounted by root: listing it'
            : `${ofRoot} vaults are mounted by root: listing them`,
          'list',
        );
      }
      if (ofRoot > 0)
        warn(
          `${ofRoot === 1 ? 'a vault' : `${ofRoot} vaults`} mounted by root not shown (sudo vault list shows them)`,
        );
      // The size of the volume is the size of its block file (served by the daemon); unknown if broken.
      const vaults = await Promise.all(
        listed.map(async (vault) => ({
          ...vault,
          size: await stat(vault.blockFile).then(
            (info) => info.size,
            () => null,
          ),
        })),
      );
      if (options.json) {
        printJson(vaults);
        return;
      }
      if (vaults.length === 0) {
        process.stdout.write('no vaults mounted\n');
        return;
      }
      printTable(
        vaults.map((vault) => ({
          file: vault.file,
          format: vault.format,
          mountpoint: vault.mountpoint ?? '-',
          type: vault.fsType ?? '-',
          size: vault.size === null ? '-' : formatSize(vault.size),
          blockFile: vault.blockFile,
          loop: vault.loopDevice ?? '-',
          ro: vault.readOnly ? 'yes' : 'no',
          pid: String(vault.pid),
          state:
            (vault.hiddenProtection === 'tripped'
              ? `${vault.state}, hidden protection tripped: read-only`
              : vault.hiddenProtection === 'on'
                ? `${vault.state}, hidden protected`
                : vault.state) +
            (vault.idleDismountSeconds === null
              ? ''
              : `, idle dismount ${formatDuration(vault.idleDismountSeconds * 1000)}`),
        })),
        [
          'file',
          'format',
          'mountpoint',
          'type',
          { key: 'size', align: 'right' },
          { key: 'blockFile', header: 'BLOCK FILE' },
          'loop',
          'ro',
          { key: 'pid', align: 'right' },
          'state',
        ],
      );
    });
}
