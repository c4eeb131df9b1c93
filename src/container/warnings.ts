// What Vault.warnings may hold: a module of its own, so that the CLI can word them (src/cli/hints.ts)
// without loading the vault code on every command.
export const VAULT_WARNINGS = {
  primaryDamaged: 'primary header damaged, using the backup; a repair rewrites it from the backup',
  primaryStale: 'primary header is out of date (an update was interrupted); a repair rewrites it',
  interruptedResize:
    'the vault file is longer than its volume (an interrupted resize); resizing it again finishes the job',
} as const;
