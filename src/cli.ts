#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { helpText } from './config.js';
import { fail } from './commands/command.js';
import { serve } from './commands/serve.js';

// The CLI only dispatches: each subcommand is its own module under commands/.
const COMMANDS = new Map([serve].map((c) => [c.name, c]));

const version = (): string =>
  (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === 'version') {
    process.stdout.write(`${version()}\n`);
    return;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(helpText());
    return;
  }
  const command = COMMANDS.get(name);
  if (command === undefined) fail(`unknown command "${name}"; try "pushwire --help"`);
  await command.run(rest);
}

main(process.argv.slice(2)).catch((err: unknown) => fail((err as Error).stack ?? String(err), 1));
