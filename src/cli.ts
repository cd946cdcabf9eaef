#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { checkConfig } from './commands/check-config.js';
import { fail, type Command } from './commands/command.js';
import { consume } from './commands/consume.js';
import { nodes } from './commands/nodes.js';
import { online } from './commands/online.js';
import { push } from './commands/push.js';
import { serve } from './commands/serve.js';
import { token } from './commands/token.js';
import { columns, helpText } from './config.js';

// The CLI only dispatches: each subcommand is its own module under commands/.
const COMMANDS: ReadonlyMap<string, Command> = new Map(
  [serve, token, push, consume, nodes, online, checkConfig].map((c) => [c.name, c]),
);

/** `pushwire --help`: the commands, then serve's options (the command most people run). */
const mainHelp = (): string =>
  `Usage: pushwire <command> [options]\n\nCommands:\n${columns([...COMMANDS.values()].map((c) => [c.name, c.summary]))}` +
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
  const command = COMMANDS.get(name);
  if (command === undefined) fail(`unknown command "${name}"; try "pushwire --help"`);
  await command.run(rest);
}

main(process.argv.slice(2)).catch((err: unknown) => fail((err as Error).stack ?? String(err), 1));
