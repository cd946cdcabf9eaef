import type { Bus } from './bus.js';

/** In-process bus for a single node: the same interface, no network. */
export class MemoryBus implements Bus {
  private readonly channels = new Set<string>();
  private handler: (channel: string, payload: Buffer) => void = () => {};

  publish(channel: string, payload: Buffer): Promise<void> {
    // Deliver on a microtask, like a real bus: the caller's ack never waits on fan-out.
    if (this.channels.has(channel)) queueMicrotask(() => this.handler(channel, payload));
    return Promise.resolve();
  }

  subscribe(channel: string): Promise<void> {
    this.channels.add(channel);
    return Promise.resolve();
  }

  unsubscribe(channel: string): Promise<void> {
    this.channels.delete(channel);
    return Promise.resolve();
  }

  onMessage(handler: (channel: string, payload: Buffer) => void): void {
    this.handler = handler;
  }

  isReady(): boolean {
    return true;
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.channels.clear();
    return Promise.resolve();
  }
}
