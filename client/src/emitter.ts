/**
 * A typed event emitter, small on purpose (no Node `events` in a browser bundle).
 * `on` returns a function that removes the listener, so callers need not keep the handler around.
 */
export type Listener<A> = (arg: A) => void;

export class Emitter<Events extends Record<string, unknown>> {
  private listeners: { [K in keyof Events]?: Array<Listener<Events[K]>> } = {};

  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    (this.listeners[event] ??= []).push(listener);
    return () => this.off(event, listener);
  }

  once<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(event, (arg) => {
      off();
      listener(arg);
    });
    return off;
  }

  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    const list = this.listeners[event];
    if (!list) return;
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
  }

  /**
   * Calls every listener. A listener that throws does not stop the others or break the client's
   * state machine: the error is re-thrown on a later task, where the host reports it as uncaught.
   */
  protected emit<K extends keyof Events>(event: K, arg: Events[K]): void {
    const list = this.listeners[event];
    if (!list) return;
    for (const listener of list.slice()) {
      try {
        listener(arg);
      } catch (err) {
        setTimeout(() => {
          throw err;
        }, 0);
      }
    }
  }
}
