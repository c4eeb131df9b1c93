// The commander program: global options and one registration per subcommand file in ./commands.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerCommands } from './commands/index.js';

const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export function buildProgram(): Command {
  const program = new Command('vault')
    .description(
      'Encrypted virtual volumes: one file, every sector XTS-AES-256, mounted through FUSE and a loop device.',
    )
    .version(packageJson.version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .exitOverride()
    .configureOutput({
      writeErr: (text) => process.stderr.write(text.replace(/^error: /, 'vault: error: ')),
    })
    .showSuggestionAfterError(true);
  registerCommands(program);
  return program;
}
