// `vault resize <file> <new-size>`: grows a dismounted vault (src/container/resize.ts: new area filled,
// backup headers moved, crash-safe), then grows the filesystem inside through the bridge: e2fsck -fy and
// resize2fs for ext2/3/4; other filesystems are left as they are. Shrinking is refused.
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { isVaultError, VaultError } from '../../container/errors.js';
import { resizeVault } from '../../container/resize.js';
import type { Secret } from '../../container/secret.js';
import type { Vault } from '../../container/vault.js';
import { withBridge } from '../../fuse/bridge.js';
import { refuseIfMounted } from '../../fuse/list.js';
import { filesystemRecord } from '../../host/filesystems.js';
import { detectFilesystem } from '../../host/mounts.js';
import { findTool, firstLine, run } from '../../host/process.js';
import { checkSystem } from '../../host/requirements.js';
import { refuseForeignVolume } from '../foreign-refusal.js';
import { interruptSignal } from '../interrupt.js';
import { createProgress } from '../progress.js';
import { addCostOption, addSecretOptions, parseCost, type SecretOptions, withUnlock } from '../secrets.js';
import { formatSize, parseSize } from '../size.js';

interface ResizeCommandOptions extends SecretOptions {
  filesystem: boolean;
}

export function register(program: Command): void {
  const command = program
    .command('resize')
    .description('grow a dismounted vault to <new-size> and grow the ext4 filesystem inside')
    .argument('<file>', 'the vault file')
    .argument('<new-size>', 'the new size of the vault FILE (64M, 2G, 1.5T), or +<size> to grow by that much')
    .option('--no-filesystem', 'only grow the volume; leave the filesystem inside as it is (no root needed)');
  addSecretOptions(command);
  addCostOption(command);
  command.addHelpText(
    'after',
    `
Examples:
  sudo vault resize secret.vol 4G                 # the file becomes 4 GiB; ext4 inside grows too
  sudo vault resize secret.vol +512M
  printf '%s\\n' "$PASS" | sudo vault resize secret.vol 2G --password-stdin

The vault must be dismounted. Shrinking is not supported. ext2/3/4 filesystems are checked (e2fsck -fy)
and grown (resize2fs); vfat and exfat cannot be grown offline here and keep their size. If the command is
interrupted or the machine crashes, the vault still opens with the same secrets: run the same command
again (with the absolute size) to finish.`,
  );
  command.action(async (file: string, sizeText: string, options: ResizeCommandOptions) => {
    await refuseForeignVolume(file, 'resize');
    const costLevel = parseCost(options);
    const info = await stat(file).catch(() => null);
    if (!info?.isFile())
      throw new VaultError('NOT_FOUND', `no such file: ${file}`, 'check the path of the vault');
    const growBy = sizeText.trim().startsWith('+');
    const newFileSize = growBy ? info.size + parseSize(sizeText.trim().slice(1)) : parseSize(sizeText);
    if (newFileSize < info.size) {
      throw new VaultError(
        'USAGE',
        `shrinking a vault is not supported: ${file} is ${formatSize(info.size)} (${info.size} bytes), ` +
          `${formatSize(newFileSize)} was asked for`,
        'give a larger size, or copy the files into a new, smaller vault',
      );
    }
    await refuseIfMounted(file, { allowReadOnly: false });
    if (options.filesystem) checkSystem(['blkid', 'fusermount']);
    const rerun = growBy ? String(newFileSize) : sizeText.trim();
    let filesystemOutcome = 'The filesystem inside was left as it is (--no-filesystem).';
    // The filesystem grows on the vault resize already unlocked: one KDF run for the whole command.
    const grown = await withUnlock(options, { prompt: `Password for ${file}: `, costLevel }, (secret) =>
      growVolume(file, secret, newFileSize, costLevel, rerun, async (vault) => {
        if (options.filesystem) filesystemOutcome = await growFilesystem(vault);
      }),
    );
    const fileText = `${formatSize(newFileSize)} (${newFileSize} bytes)`;
    if (grown.newDataSize === grown.oldDataSize) {
      process.stdout.write(`${file} is already ${fileText}; the volume keeps its size.\n`);
    } else {
      process.stdout.write(
        `Grew ${file} to ${fileText}: volume ${formatSize(grown.oldDataSize)} -> ${formatSize(grown.newDataSize)}.\n`,
      );
    }
    process.stdout.write(`${filesystemOutcome}\n`);
  });
}

async function growVolume(
  file: string,
  secret: Secret,
  newFileSize: number,
  costLevel: number,
  rerunSize: string,
  afterGrow: (vault: Vault) => Promise<void>,
): Promise<{ oldDataSize: number; newDataSize: number }> {
  let progress = createProgress('Growing', 0);
  try {
    return await resizeVault(file, secret, newFileSize, {
      costLevel,
      afterGrow: async (vault) => {
        progress.done();
        await afterGrow(vault);
      },
      signal: interruptSignal(),
      onProgress: (done, total) => {
        // The size of the new area is known once the vault is unlocked.
        if (done === 0) progress = createProgress('Growing', total);
        progress.update(done);
      },
    });
  } catch (error) {
    if (isVaultError(error, 'INTERRUPTED')) {
      throw new VaultError(
        'INTERRUPTED',
        'interrupted; the vault was not grown and opens as before (the file may already be longer)',
        `run it again to finish: vault resize ${file} ${rerunSize}`,
      );
    }
    throw error;
  } finally {
    progress.done();
  }
}

/** Grows the filesystem to fill the volume, when the registry says how (ext2/3/4); returns the line to print. */
async function growFilesystem(vault: Vault): Promise<string> {
  return withBridge(vault, async (blockFile) => {
    const type = await detectFilesystem(blockFile);
    if (type === null) return 'No filesystem recognised inside; nothing else to grow.';
    const grow = filesystemRecord(type)?.grow;
    if (!grow) {
      return (
        `The ${type} filesystem inside keeps its old size: ${type} cannot be grown offline by vault. ` +
        'Copy the files out, reformat (vault mount --no-filesystem, then mkfs on the block file), copy back.'
      );
    }
    const [checkTool = '', ...checkArgs] = grow.check;
    const [resizeTool = '', ...resizeArgs] = grow.resize;
    for (const tool of [checkTool, resizeTool]) {
      if (!findTool(tool)) {
        throw new VaultError(
          'NEEDS_SYSTEM',
          `${tool} is missing; the volume grew but the ${type} filesystem did not`,
          `install the Debian package ${grow.package}, then run the same vault resize command again`,
        );
      }
    }
    // resize2fs insists on a freshly checked filesystem. 1 = errors corrected, 2 = corrected (reboot).
    const check = await run(checkTool, [...checkArgs, blockFile], UNINTERRUPTED);
    if (check.code < 0 || check.code >= 4) {
      throw new VaultError(
        'IO',
        `${checkTool} found errors it could not correct (exit ${check.code}): ${firstLine(check.stderr) || firstLine(check.stdout)}`,
        `the volume grew but the filesystem did not; run vault mount ${vault.path} --no-filesystem, then e2fsck on the block file`,
      );
    }
    const resized = await run(resizeTool, [...resizeArgs, blockFile], UNINTERRUPTED);
    if (resized.code !== 0) {
      throw new VaultError(
        'IO',
        `${resizeTool} failed: ${firstLine(resized.stderr) || `exit ${resized.code}`}`,
        `the volume grew but the filesystem did not; run the same vault resize command again`,
      );
    }
    const corrected = check.code > 0 ? ' (e2fsck corrected errors on the way)' : '';
    return `The ${type} filesystem now fills the volume${corrected}.`;
  });
}

/**
 * e2fsck and resize2fs run in their own process group: a Ctrl-C in the terminal reaches only vault,
 * which lets them finish (stopping resize2fs half-way can damage the filesystem) and then stops. No
 * time limit: a large filesystem takes as long as it takes.
 */
const UNINTERRUPTED = { ownProcessGroup: true, timeoutMs: 0 };
