// The vault(1) man page, generated from the commander program itself (as `vault completion` is), so it
// names exactly the commands, arguments and options of this version. scripts/man.mjs writes it to
// man/vault.1 at build time; package.json `man` installs it. The exit codes come from exit-codes.ts.
import type { Command, Help } from 'commander';
import { EXIT_CODES } from './exit-codes.js';

const EXIT_MEANINGS: Readonly<Record<keyof typeof EXIT_CODES, string>> = {
  OK: 'success',
  INTERNAL: 'a bug in vault; run again with VAULT_DEBUG=1 and report the output',
  USAGE: 'bad command line, or a refused request (shrinking, removing the last keyslot, ...)',
  CANNOT_UNLOCK: 'wrong password, keyfile or cost level, or not a vault (deliberately indistinguishable)',
  NOT_FOUND: 'a named file, keyfile, directory, mountpoint or mounted vault does not exist',
  BUSY: 'already mounted, mountpoint in use, filesystem busy at dismount, vault mounted while resizing or exporting',
  NEEDS_SYSTEM: 'needs root, /dev/fuse, a loop device or a system tool (mkfs.ext4, losetup, ...)',
  MISSING_SECRET: 'no password or keyfile available (--non-interactive or no terminal, stdin ended)',
  EXISTS: 'refusing to overwrite an existing file without --force',
  IO: 'host I/O failed: disk full, read or write error, permission denied, damaged file',
  INTERRUPTED: 'Ctrl-C or SIGTERM; the operation was cancelled and undone',
};

/** Text for roff: backslashes and hyphens escaped, no line starting with a control character. */
function roff(text: string): string {
  return text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .split('\n')
    .map((line) => (/^[.']/.test(line) ? `\\&${line}` : line))
    .join('\n');
}

function visible(command: Command): Command[] {
  return command.commands.filter((sub) => !(sub as unknown as { _hidden?: boolean })._hidden);
}

/** The full name of a command: "vault key add". */
function fullName(command: Command): string {
  const names: string[] = [];
  for (let at: Command | null = command; at; at = at.parent) names.unshift(at.name());
  return names.join(' ');
}

/** What `--help` prints after the generated part (addHelpText 'after': examples, notes). */
function helpAfter(command: Command): string {
  let printed = '';
  command.configureOutput({
    writeOut: (text) => {
      printed += text;
    },
    getOutHelpWidth: () => 100,
    getOutHasColors: () => false,
  });
  command.outputHelp();
  const generated = command.helpInformation();
  const at = printed.indexOf(generated);
  return (at < 0 ? '' : printed.slice(at + generated.length)).replace(/^\n+|\s+$/g, '');
}

function options(help: Help, command: Command): string[] {
  const lines: string[] = [];
  for (const option of command.options) {
    if (option.hidden || option.long === '--help') continue;
    lines.push('.TP', `.B ${roff(option.flags)}`, roff(help.optionDescription(option)));
  }
  return lines;
}

function commandSection(help: Help, command: Command): string[] {
  const lines = [`.SS "${roff(fullName(command))}"`];
  const usage = help.commandUsage(command).split('\n');
  lines.push('.nf', ...usage.map((line) => `.B ${roff(line.trim())}`), '.fi');
  lines.push('.PP', roff(command.description()));
  if (command.aliases().length > 0) lines.push('.PP', `Alias: ${roff(command.aliases().join(', '))}.`);
  const subcommands = visible(command);
  if (subcommands.length > 0)
    lines.push('.PP', `Subcommands: ${subcommands.map((sub) => roff(sub.name())).join(', ')}.`);
  if (command.registeredArguments.length > 0) {
    lines.push('.PP', 'Arguments:');
    for (const argument of command.registeredArguments)
      lines.push('.TP', `.I ${roff(argument.name())}`, roff(help.argumentDescription(argument)));
  }
  const optionLines = options(help, command);
  if (optionLines.length > 0) lines.push('.PP', 'Options:', ...optionLines);
  const after = helpAfter(command);
  if (after) lines.push('.PP', '.nf', '.RS 4', roff(after), '.RE', '.fi');
  for (const sub of subcommands) lines.push(...commandSection(help, sub));
  return lines;
}

/** vault(1) in roff (man(7) macros) for `program` with every command registered. */
export function manPage(program: Command, version: string): string {
  const help = program.createHelp();
  const globalOptions = [
    ...options(help, program),
    '.TP',
    '.B \\-h, \\-\\-help',
    'show help; `vault help <command>` or `vault <command> \\-\\-help` for one command',
  ];
  const exitCodes = (Object.keys(EXIT_CODES) as Array<keyof typeof EXIT_CODES>).flatMap((name) => [
    '.TP',
    `.B ${EXIT_CODES[name]}`,
    `${name}: ${roff(EXIT_MEANINGS[name])}`,
  ]);
  return `${[
    `.TH VAULT 1 "" "vault ${roff(version)}" "User Commands"`,
    '.SH NAME',
    'vault \\- on\\-the\\-fly encrypted virtual volumes (XTS\\-AES\\-256 in one file, mounted through FUSE)',
    '.SH SYNOPSIS',
    '.B vault',
    '.I command',
    '[\\fIoptions\\fR] [\\fIarguments\\fR]',
    '.SH DESCRIPTION',
    roff(program.description()),
    '.PP',
    'mount, dismount and formatting need root (or mount \\-\\-user with FUSE). Passwords are read from',
    'the terminal or, with \\-\\-password\\-stdin, from stdin; never from arguments or the environment.',
    '.SH OPTIONS',
    ...globalOptions,
    '.SH COMMANDS',
    ...visible(program).flatMap((command) => commandSection(help, command)),
    '.SH EXIT STATUS',
    ...exitCodes,
    '.SH ENVIRONMENT',
    '.TP',
    '.B VAULT_DEBUG=1',
    'print stack traces with errors',
    '.TP',
    '.B VAULT_XTS=node\\-crypto',
    'use the node:crypto XTS fallback instead of the OpenSSL addon (for comparison)',
    '.TP',
    '.B PATH',
    'system tools (losetup, mount, mkfs.*, e2fsck, resize2fs, fusermount) are found through it;',
    'keep /usr/sbin and /sbin in it',
    '.SH FILES',
    '.TP',
    '.I /run/vault',
    "root's state directories of mounted vaults and the daemons' logs",
    '.TP',
    '.I $XDG_RUNTIME_DIR/vault, /tmp/vault\\-<uid>',
    'the same for mount \\-\\-user',
    '.TP',
    '.I /media/vault',
    'where mount puts a vault when no mountpoint is given',
    '.SH SEE ALSO',
    '.BR mount (8),',
    '.BR losetup (8),',
    '.BR cryptsetup (8);',
    'docs/CLI.md and docs/FORMAT.md in the package',
  ].join('\n')}\n`;
}
