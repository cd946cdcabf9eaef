// Preloaded into pushwire nodes by the benchmark harness (node --expose-gc --import ...): a full GC on SIGUSR2,
// so the `idle` scenario measures memory after collection, as it does for the baselines' /stats.
process.on('SIGUSR2', () => globalThis.gc?.());
