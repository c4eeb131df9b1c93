// The commander program and one run of it: global options, one registration per subcommand file in
// ./commands, and the mapping of every outcome (success, usage error, VaultError, bug, Ctrl-C) to the
// stderr lines and exit code users and scripts rely on (src/cli/exit-codes.ts, docs/CLI.md).
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { isVaultError, VaultError } from '../container/errors.js';
import { type CommandModule, loadCommands, registerCommands } from './commands/index.js';
import { EXIT_CODES } from './exit-codes.js';
import { interruptedError, releaseInterrupts, wasInterrupted } from './interrupt.js';
import { PACKAGE_ROOT } from './package-root.js';
import { reportError } from './report.js';
import { forgetStdin } from './secrets.js';

const packageJson = JSON.parse(readFileSync(new URL('package.json', PACKAGE_ROOT), 'utf8')) as {
  version: string;
};

export const VERSION = packageJson.version;

export function buildProgram(commands: readonly CommandModule[]): Command {
  const program = new Command('vault')
    .description(
      'Encrypted virtual volumes: one file, every sector XTS-AES-256, mounted through FUSE and a loop device.',
    )
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .helpCommand('help [command]', 'show help for a command')
    .exitOverride()
    .configureOutput({
      // commander prints "error: ..." for usage errors; make it look like every other vault error.
      writeErr: (text) => process.stderr.write(text.replace(/^error: /, 'vault: error: ')),
    })
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 2 usage, 3 cannot unlock, 4 not found, 5 busy, 6 needs root/FUSE/tool,\n' +
        '7 missing secret, 8 exists, 9 I/O, 1 internal, 130 interrupted (docs/CLI.md).\n' +
        'Set VAULT_DEBUG=1 to print stack traces with errors.',
    );
  registerCommands(program, commands);
  return program;
}

/** Runs one command line (process.argv layout) and returns the exit code; never throws. */
export async function runProgram(argv: readonly string[]): Promise<number> {
  const program = buildProgram(await loadCommands(argv));
  try {
    await program.parseAsync([...argv], { from: 'node' });
    return EXIT_CODES.OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here with exit code 0; usage errors were already printed by commander.
      if (error.exitCode === 0) return EXIT_CODES.OK;
      reportError(new VaultError('USAGE', error.message.replace(/^error: /, ''), usageHint(program, argv)), {
        alreadyPrinted: true,
      });
      return EXIT_CODES.USAGE;
    }
    if (wasInterrupted()) {
      // The command has cleaned up (it watched interruptSignal()); whatever it threw, this run was interrupted.
      reportError(isVaultError(error) ? error : interruptedError());
      return EXIT_CODES.INTERRUPTED;
    }
    return reportError(error);
  } finally {
    releaseInterrupts();
    forgetStdin();
  }
}

function usageHint(program: Command, argv: readonly string[]): string {
  const word = argv.slice(2).find((arg) => !arg.startsWith('-'));
  const known = program.commands.some((command) => command.name() === word && word !== 'help');
  return known ? `see \`vault ${word} --help\`` : 'see `vault --help`';
}
