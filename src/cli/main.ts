// Entry point of the `vault` command: builds the commander program, runs it, and turns every
// failure into `vault: error:` / `vault: hint:` lines and the exit code of src/cli/exit-codes.ts.
import { CommanderError } from 'commander';
import { VaultError } from '../container/errors.js';
import { buildProgram } from './program.js';
import { reportError } from './report.js';

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv as string[], { from: 'node' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version exit through here with code 0; usage errors were already printed.
      if (error.exitCode === 0) return 0;
      return reportError(new VaultError('USAGE', error.message.replace(/^error: /, ''), usageHint(argv)), {
        alreadyPrinted: true,
      });
    }
    return reportError(error);
  }
}

function usageHint(argv: readonly string[]): string {
  const command = argv[2];
  return command && !command.startsWith('-') ? `see \`vault ${command} --help\`` : 'see `vault --help`';
}

process.exitCode = await main(process.argv);
