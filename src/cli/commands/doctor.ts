// `vault doctor`: whether the main job works on this machine, as `scripts/setup.sh` ends. It checks each
// part a vault needs (kernel filesystems and their tools, /dev/fuse, loop devices, the system tools,
// the native addons, Argon2id at the default level), naming the Debian package or step that brings a
// missing one, then (as root) makes a small vault in a private temporary directory and does what a
// user does: create, mount, write, dismount, remount, compare. One verdict line at the end; exit 6
// when anything is missing or failed. VeraCrypt's `--test` checks its algorithms; this checks the path.
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { VaultError } from '../../container/errors.js';
import { costParams, DEFAULT_COST_LEVEL, deriveKdf } from '../../crypto/kdf.js';
import { nativeAddon } from '../../crypto/native.js';
import { fuse3 } from '../../fuse/fuse3.js';
import {
  CREATABLE_TYPES,
  filesystemRecord,
  installedFuseDriver,
  kernelHasDriver,
} from '../../host/filesystems.js';
import { findTool, run } from '../../host/process.js';
import { PACKAGE_ROOT } from '../package-root.js';

interface Check {
  what: string;
  ok: boolean;
  detail: string;
  /** The package or step that brings it, for a failed check. */
  fix?: string;
  /** Missing but not needed for the main job (an optional filesystem): a warning, not a problem. */
  warning?: boolean;
}

const TOOLS: ReadonlyArray<readonly [tool: string, pkg: string]> = [
  ['losetup', 'util-linux'],
  ['mount', 'mount'],
  ['umount', 'mount'],
  ['blkid', 'util-linux'],
  ['e2fsck', 'e2fsprogs'],
  ['resize2fs', 'e2fsprogs'],
  ['debugfs', 'e2fsprogs'],
  ['fuse2fs', 'fuse2fs'],
];

export function register(program: Command): void {
  program
    .command('doctor')
    .description(
      'check that vault works on this machine, then (as root) make, mount and remount a small vault',
    )
    .option('--no-round-trip', 'only the checks, no test vault')
    .addHelpText(
      'after',
      '\nExamples:\n  sudo vault doctor                # what scripts/setup.sh runs last\n  vault doctor --no-round-trip',
    )
    .action(async (options: { roundTrip: boolean }) => {
      const checks = [
        ...filesystemChecks(),
        fuseDeviceCheck(),
        loopCheck(),
        ...toolChecks(),
        ...addonChecks(),
        await argon2Check(),
      ];
      for (const check of checks) print(check);
      const root = process.getuid?.() === 0;
      const problems = checks.filter((check) => !check.ok);
      let roundTrip: Check | null = null;
      if (options.roundTrip && root && problems.length === 0) {
        roundTrip = await roundTripCheck();
        print(roundTrip);
      }
      const failed = [...problems, ...(roundTrip && !roundTrip.ok ? [roundTrip] : [])];
      if (failed.length > 0) {
        throw new VaultError(
          'NEEDS_SYSTEM',
          `vault doctor: ${failed.length} problem${failed.length === 1 ? '' : 's'}: ${failed.map((check) => check.what).join(', ')}`,
          'install what each line names (bash scripts/setup.sh installs all of it on Debian), then run vault doctor again',
        );
      }
      process.stdout.write(
        roundTrip
          ? 'vault doctor: ready: a vault was created, mounted, written, dismounted and remounted here\n'
          : `vault doctor: the checks pass${root ? '' : '; run it as root (sudo vault doctor) for the round trip'}\n`,
      );
    });
}

function print(check: Check): void {
  const status = check.warning ? 'warn' : check.ok ? 'ok  ' : 'FAIL';
  const line = `${status}  ${check.what}: ${check.detail}`;
  process.stdout.write(`${check.fix && (check.warning || !check.ok) ? `${line} (${check.fix})` : line}\n`);
}

function filesystemChecks(): Check[] {
  return CREATABLE_TYPES.map((name) => {
    const record = filesystemRecord(name);
    if (!record?.mkfs) return { what: `filesystem ${name}`, ok: false, detail: 'not in the registry' };
    const kernel = kernelHasDriver(record);
    const fuse = installedFuseDriver(record);
    const mkfs = findTool(record.mkfs.tool);
    const driver = kernel ? 'kernel driver' : fuse ? `FUSE driver ${fuse}` : 'no driver';
    const ok = (kernel || fuse !== null) && mkfs !== null;
    const fix = !mkfs
      ? `apt-get install ${record.mkfs.package}`
      : record.fuseDriver
        ? `modprobe ${record.kernelDriver ?? name}, or apt-get install ${record.fuseDriver.package}`
        : `modprobe ${record.kernelDriver ?? name}`;
    // ext4 is the default and must work; the others are optional: reported, not counted as problems.
    const required = name === 'ext4';
    return {
      what: `filesystem ${name}`,
      ok: ok || !required,
      detail: `${driver}, ${mkfs ? record.mkfs.tool : `no ${record.mkfs.tool}`}${ok || required ? '' : `: vault create refuses ${name} here`}`,
      ...(ok ? {} : { fix }),
      ...(ok || required ? {} : { warning: true }),
    };
  });
}

function fuseDeviceCheck(): Check {
  const info = existsSync('/dev/fuse') ? statSync('/dev/fuse') : null;
  if (!info) {
    return {
      what: '/dev/fuse',
      ok: false,
      detail: 'missing',
      fix: 'modprobe fuse; in a container, pass --device /dev/fuse',
    };
  }
  let usable = true;
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    usable = false;
  }
  const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
  return {
    what: '/dev/fuse',
    ok: usable,
    detail: `mode ${mode}${usable ? '' : ', not usable by you'}`,
    ...(usable ? {} : { fix: 'run as root; for vault mount --user, chmod 0666 /dev/fuse (Debian default)' }),
  };
}

function loopCheck(): Check {
  const control = existsSync('/dev/loop-control');
  return {
    what: 'loop devices',
    ok: control,
    detail: control ? '/dev/loop-control present' : 'no /dev/loop-control',
    ...(control ? {} : { fix: 'modprobe loop' }),
  };
}

function toolChecks(): Check[] {
  const fusermount = findTool('fusermount3') ?? findTool('fusermount');
  return [
    ...TOOLS.map(([tool, pkg]): Check => {
      const path = findTool(tool);
      return {
        what: tool,
        ok: path !== null,
        detail: path ?? 'missing',
        ...(path ? {} : { fix: `apt-get install ${pkg}` }),
      };
    }),
    {
      what: 'fusermount',
      ok: fusermount !== null,
      detail: fusermount ?? 'missing',
      ...(fusermount ? {} : { fix: 'apt-get install fuse3' }),
    },
  ];
}

function addonChecks(): Check[] {
  let fuseOk = true;
  let fuseDetail = 'native/fuse3.c on libfuse 3';
  try {
    fuse3();
  } catch (error) {
    fuseOk = false;
    fuseDetail = error instanceof Error ? error.message : String(error);
  }
  return [
    {
      what: 'XTS addon',
      ok: nativeAddon !== null,
      detail: nativeAddon ? 'native/xts.c through OpenSSL' : 'not built (node:crypto is used instead)',
      ...(nativeAddon ? {} : { fix: 'apt-get install build-essential python3, then npm rebuild' }),
    },
    {
      what: 'FUSE 3 addon',
      ok: fuseOk,
      detail: fuseDetail,
      ...(fuseOk ? {} : { fix: 'apt-get install libfuse3-3 libfuse3-dev pkg-config, then npm rebuild' }),
    },
  ];
}

async function argon2Check(): Promise<Check> {
  const params = costParams(DEFAULT_COST_LEVEL);
  const material = randomBytes(64);
  try {
    const started = performance.now();
    const output = await deriveKdf(material, randomBytes(32), DEFAULT_COST_LEVEL);
    const ms = Math.round(performance.now() - started);
    output.fill(0);
    return {
      what: 'Argon2id',
      ok: true,
      detail: `default level ${DEFAULT_COST_LEVEL} (${params.memoryKiB / 1024} MiB, ${params.iterations} passes) takes ${ms} ms per unlock here`,
    };
  } catch (error) {
    return {
      what: 'Argon2id',
      ok: false,
      detail: error instanceof Error ? error.message : String(error),
      fix: 'free memory, or reinstall: npm rebuild argon2',
    };
  } finally {
    material.fill(0);
  }
}

/**
 * The user's story, through this very `vault` (bin/vault of this installation), in a private
 * temporary directory: a keyfile (no password to pass around), create 16 MiB ext4, mount, write,
 * dismount, mount again, compare, dismount. Everything is removed afterwards, also on failure.
 */
async function roundTripCheck(): Promise<Check> {
  const bin = fileURLToPath(new URL('bin/vault', PACKAGE_ROOT));
  const dir = await mkdtemp(join(tmpdir(), 'vault-doctor-'));
  const file = join(dir, 'doctor.vol');
  const key = join(dir, 'doctor.key');
  const mnt = join(dir, 'mnt');
  const secret = ['-k', key, '--non-interactive'];
  const vault = (...args: string[]) => run(process.execPath, [bin, ...args], { timeoutMs: 120_000 });
  const steps: Array<[string, () => Promise<{ code: number; stderr: string }>]> = [
    ['keyfile generate', () => vault('keyfile', 'generate', key)],
    ['create', () => vault('create', '16M', file, '--quick', ...secret)],
    ['mount', () => vault('mount', file, mnt, ...secret)],
  ];
  const content = randomBytes(64 * 1024);
  let mounted = false;
  try {
    await mkdir(mnt, { mode: 0o700 });
    for (const [name, step] of steps) {
      const result = await step();
      if (result.code !== 0) return failedStep(name, result.stderr);
    }
    mounted = true;
    await writeFile(join(mnt, 'doctor.bin'), content);
    let result = await vault('dismount', mnt);
    if (result.code !== 0) return failedStep('dismount', result.stderr);
    mounted = false;
    result = await vault('mount', file, mnt, '--read-only', ...secret);
    if (result.code !== 0) return failedStep('remount', result.stderr);
    mounted = true;
    const back = await readFile(join(mnt, 'doctor.bin'));
    result = await vault('dismount', mnt);
    mounted = result.code !== 0;
    if (!back.equals(content))
      return failedStep('compare', 'the file read back differs from the one written');
    if (mounted) return failedStep('dismount', result.stderr);
    return {
      what: 'round trip',
      ok: true,
      detail: 'create, mount, write, dismount, remount, compare: all fine',
    };
  } finally {
    if (mounted) await vault('dismount', '--force', mnt);
    await rm(dir, { recursive: true, force: true });
  }
}

function failedStep(step: string, stderr: string): Check {
  const error = stderr
    .split('\n')
    .find((line) => line.startsWith('vault: error:'))
    ?.replace(/^vault: error: /, '');
  return {
    what: 'round trip',
    ok: false,
    detail: `${step} failed: ${error ?? (stderr.trim() || 'no message')}`,
    fix: 'run that step by hand to see why',
  };
}
