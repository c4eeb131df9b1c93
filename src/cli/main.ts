// Entry point of the `vault` command (bin/vault imports this): run the command line, set the exit code.
// Everything else (error lines, exit-code table, Ctrl-C) lives in program.ts, report.ts, interrupt.ts.
import { runProgram } from './program.js';

process.exitCode = await runProgram(process.argv);
