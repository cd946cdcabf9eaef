import { ConfigError } from '../config-error.js';
import { UsageError, parseArgs, usageText, type CommandSpec, type Parsed } from './args.js';

/** One `pushwire <name>` subcommand. */
export interface Command {
  name: string;
  run(args: string[]): Promise<void>;
}

/** A one-line message on stderr and the exit code (2: the caller's mistake, 1: the operation failed). */
export function fail(message: string, code = 2): never {
  process.stderr.write(`pushwire: ${message}\n`);
  process.exit(code);
}

export const wantsHelp = (args: readonly string[]): boolean => args.includes('--help') || args.includes('-h');

/**
 * A command of the `spec` options: --help prints the usage, bad arguments exit 2 with a hint,
 * `OperationError`s exit 1 with their message alone (no stack trace).
 */
export function defineCommand(name: string, spec: CommandSpec, run: (parsed: Parsed) => Promise<void>): Command {
  return {
    name,
    async run(args) {
      if (wantsHelp(args)) {
        process.stdout.write(usageText(spec));
        return;
      }
      let parsed: Parsed;
      try {
        parsed = parseArgs(spec, args);
      } catch (err) {
        if (err instanceof UsageError) fail(`${name}: ${err.message}; try "pushwire ${name} --help"`);
        throw err;
      }
      try {
        await run(parsed);
      } catch (err) {
        if (err instanceof UsageError) fail(`${name}: ${err.message}; try "pushwire ${name} --help"`);
        if (err instanceof ConfigError) fail(err.message, 1);
        if (err instanceof OperationError) fail(`${name}: ${err.message}`, 1);
        throw err;
      }
    },
  };
}

/** The operation was understood but failed (the node refused, a file is invalid): exit 1. */
export class OperationError extends Error {
  override name = 'OperationError';
}
