import type { Command } from './command.js';

/** A subcommand as `pushwire --help` lists it; its module is loaded only when it runs. */
export interface CommandEntry {
  name: string;
  /** One line for `pushwire --help`. */
  summary: string;
  load(): Promise<Command>;
}

// Loading on demand keeps `pushwire token` from loading the whole node (express, ioredis, every
// ingress): a third of the CPU of a short command.
export const COMMANDS: readonly CommandEntry[] = [
  { name: 'serve', summary: 'start a node', load: async () => (await import('./serve.js')).serve },
  { name: 'token', summary: 'mint a login JWT for development (HS256 with --secret, RS256/ES256 with --key)', load: async () => (await import('./token.js')).token },
  { name: 'push', summary: 'push a message to a topic, a user or everyone, over gRPC or the REST bridge', load: async () => (await import('./push.js')).push },
  { name: 'consume', summary: 'receive client events as a backend consumer (BackendService.Connect), one JSON line each', load: async () => (await import('./consume.js')).consume },
  { name: 'nodes', summary: 'list the nodes of the cluster (ClusterService.ListNodes)', load: async () => (await import('./nodes.js')).nodes },
  { name: 'online', summary: 'count and list the online users of a project (OnlineUsersService)', load: async () => (await import('./online.js')).online },
  { name: 'check-config', summary: 'validate a config file and a projects file with the node\'s own loaders', load: async () => (await import('./check-config.js')).checkConfig },
];
