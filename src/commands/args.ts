import { columns } from '../config.js';

/** One option of a subcommand; without `value` it is a switch. */
export interface FlagSpec {
  name: string;
  /** Placeholder in --help (HOST:PORT, FILE...). */
  value?: string;
  help: string;
  default?: string;
}

/** A subcommand's synopsis, description and options: what it parses and what --help prints. */
export interface CommandSpec {
  usage: string;
  description: string;
  flags: readonly FlagSpec[];
}

/** Bad arguments: the message is printed as is, with a hint to --help, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export type Parsed = Map<string, string | true>;

/** `--flag value`, `--flag=value` and switches; defaults filled in. */
export function parseArgs(spec: CommandSpec, args: readonly string[]): Parsed {
  const out: Parsed = new Map();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const flag = spec.flags.find((f) => f.name === name);
    if (flag === undefined) throw new UsageError(`unknown option --${name}`);
    if (flag.value === undefined) {
      if (eq !== -1) throw new UsageError(`option --${name} takes no value`);
      out.set(name, true);
      continue;
    }
    const value = eq === -1 ? args[i + 1] : arg.slice(eq + 1);
    if (value === undefined || (eq === -1 && value.startsWith('--'))) throw new UsageError(`option --${name} needs a value`);
    if (eq === -1) i++;
    out.set(name, value);
  }
  for (const f of spec.flags) if (f.default !== undefined && !out.has(f.name)) out.set(f.name, f.default);
  return out;
}

/** A string option's value, or undefined; a UsageError when `required` and missing or empty. */
export function option(parsed: Parsed, name: string, required: true): string;
export function option(parsed: Parsed, name: string, required?: false): string | undefined;
export function option(parsed: Parsed, name: string, required = false): string | undefined {
  const v = parsed.get(name);
  if (v === true) return undefined;
  if (v === '' || (v === undefined && required)) throw new UsageError(`--${name} ${v === '' ? 'must not be empty' : 'is required'}`);
  return v;
}

export function usageText(spec: CommandSpec): string {
  const rows = spec.flags.map((f): [string, string] => [
    `--${f.name}${f.value === undefined ? '' : ` ${f.value}`}`,
    `${f.help}${f.default === undefined ? '' : ` (default ${f.default})`}`,
  ]);
  rows.push(['--help', 'show this help']);
  return `Usage: ${spec.usage}\n\n${spec.description}\n\nOptions:\n${columns(rows)}`;
}
