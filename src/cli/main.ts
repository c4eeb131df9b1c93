// Entry point of the `vault` command (bin/vault imports this): run the command line, set the exit code.
// Everything else (error lines, exit-code table, Ctrl-C) lives in program.ts, report.ts, interrupt.ts.
import { EXIT_CODES } from './exit-codes.js';
import { runProgram } from './program.js';

// `vault list | head -1` closes stdout early: that is not an error worth a stack trace. Once the command
// is done keep its exit code; while it still runs, its output was cut short (I/O).
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? EXIT_CODES.IO);
});

process.exitCode = await runProgram(process.argv);
