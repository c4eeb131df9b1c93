import type { Command } from 'commander';

// Placeholder: the command arrives with its issue.
export function register(_program: Command): void {}
