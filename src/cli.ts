#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { fail } from './commands/command.js';
import { COMMANDS } from './commands/index.js';
import { columns, helpText } from './config.js';

// The CLI only dispatches: each subcommand is its own module under commands/, listed in commands/index.ts.

/** `pushwire --help`: the commands, then serve's options (the command most people run). */
const mainHelp = (): string =>
  `Usage: pushwire <command> [options]\n\nCommands:\n${columns(COMMANDS.map((c) => [c.name, c.summary]))}` +
  `\n"pushwire <command> --help" shows a command's options.\n\n${helpText()}`;

const version = (): string =>
  (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === 'version') {
    process.stdout.write(`${version()}\n`);
    return;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp());
    return;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (entry === undefined) fail(`unknown command "${name}"; try "pushwire --help"`);
  await (await entry.load()).run(rest);
}

main(process.argv.slice(2)).catch((err: unknown) => fail((err as Error).stack ?? String(err), 1));
