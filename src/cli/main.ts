// Entry point of the `vault` command (bin/vault imports this): run the command line, set the exit code.
// Everything else (error lines, exit-code table, Ctrl-C) lives in program.ts, report.ts, interrupt.ts.
import { prestartDaemon } from '../fuse/daemon-process.js';
import { isMountCommand } from '../host/launch.js';
import { EXIT_CODES } from './exit-codes.js';

// `vault mount` starts its daemon first, before even our native addon loads: node's start-up and module
// loading in the daemon then run alongside ours instead of after them (about a third of a mount's
// time). Unused, it is killed at exit. It holds nothing yet and hardens itself.
if (isMountCommand(process.argv.slice(2))) prestartDaemon();

// Before any secret is read: no core dump and no same-user ptrace of a process that holds one.
(await import('../crypto/memory.js')).hardenProcess();
const { runProgram } = await import('./program.js');

// `vault list | head -1` closes stdout early: that is not an error worth a stack trace. Once the command
// is done keep its exit code; while it still runs, its output was cut short (I/O).
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? EXIT_CODES.IO);
});

process.exitCode = await runProgram(process.argv);
