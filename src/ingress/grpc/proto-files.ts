import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository (or installed package) root holding proto/ and third_party/; found by
 * walking up, since this file runs both from src/ (tests) and dist/src/ (the CLI).
 */
export function protoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'proto', 'pushwire', 'v1', 'push.proto'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('proto/pushwire/v1/push.proto not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}
