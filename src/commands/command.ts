/** One `pushwire <name>` subcommand. */
export interface Command {
  name: string;
  /** One line for `pushwire --help`. */
  summary: string;
  run(args: string[]): Promise<void>;
}

/** A one-line message on stderr and the exit code (2: the caller's mistake, 1: ours). */
export function fail(message: string, code = 2): never {
  process.stderr.write(`pushwire: ${message}\n`);
  process.exit(code);
}

export const wantsHelp = (args: readonly string[]): boolean => args.includes('--help') || args.includes('-h');
