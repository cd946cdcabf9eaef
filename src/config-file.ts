import { FileTooLargeError, MAX_YAML_FILE_BYTES, TooDeepError, parseYamlBounded, readFileBounded } from './bounded-document.js';
import { ConfigError } from './config-error.js';

/**
 * Reads a node config file (`--config pushwire.yaml`): a YAML (or JSON, which is YAML) mapping of
 * option names, spelled as the flags (`ws-port: 8812`), to scalar values. Returns them as the
 * strings a flag would carry, so the same conversions and messages apply. A key set to null
 * (`redis:`) counts as unset.
 */
export function readConfigFile(file: string, flags: readonly string[]): Map<string, string> {
  let text: string;
  try {
    text = readFileBounded(file, MAX_YAML_FILE_BYTES);
  } catch (err) {
    if (err instanceof FileTooLargeError) throw new ConfigError(`--config: "${file}" is ${err.message}`);
    throw new ConfigError(`--config: cannot read "${file}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYamlBounded(text);
  } catch (err) {
    if (err instanceof TooDeepError) throw new ConfigError(`${file}: ${err.message}`);
    throw new ConfigError(`${file}: not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  const values = new Map<string, string>();
  if (doc === null || doc === undefined) return values;
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(`${file}: must be a mapping of option names to values (e.g. "ws-port: 8812")`);
  }
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    if (!flags.includes(key)) {
      const hint = flags.find((f) => f.replaceAll('-', '') === key.toLowerCase().replaceAll(/[-_]/g, ''));
      throw new ConfigError(`${file}: unknown option "${key}"${hint === undefined ? '' : ` (did you mean "${hint}"?)`}`);
    }
    if (value === null) continue;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new ConfigError(`${file}: ${key}: must be a single value, got ${Array.isArray(value) ? 'a list' : 'a mapping'}`);
    }
    values.set(key, String(value));
  }
  return values;
}
