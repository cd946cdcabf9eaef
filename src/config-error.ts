/** An invalid option, env var, config file or projects file; its message is shown as is (exit 2). */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
