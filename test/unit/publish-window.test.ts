import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BusRefusedError, BusUnconfirmedError } from '../../src/cluster/bus.js';
import { PublishWindow } from '../../src/cluster/publish-window.js';

class ServerError extends Error {}

/** A command the test answers by hand. */
function command(): { sent: () => Promise<number>; ok: (v: number) => void; fail: (e: Error) => void } {
  let ok!: (v: number) => void;
  let fail!: (e: Error) => void;
  const p = new Promise<number>((res, rej) => {
    ok = res;
    fail = rej;
  });
  return { sent: () => p, ok, fail };
}

const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    (v) => `ok:${String(v)}`,
    (e: Error) => `${e.name}:${e.message}`,
  );

describe('PublishWindow', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const make = (maxInFlight = 3) => new PublishWindow({ maxInFlight, timeoutMs: 1000, refusedByServer: (e) => e instanceof ServerError });

  it('answers what the server answers: confirmed, or refused on an error reply, or unconfirmed when the connection fails', async () => {
    const w = make();
    const [a, b, c] = [command(), command(), command()];
    const pa = outcome(w.run(a.sent));
    const pb = outcome(w.run(b.sent));
    const pc = outcome(w.run(c.sent));
    expect(w.size).toBe(3);
    a.ok(7);
    b.fail(new ServerError('NOSCRIPT'));
    c.fail(new Error('Connection is closed.'));
    expect(await pa).toBe('ok:7');
    expect(await pb).toBe('BusRefusedError:redis refused the command: NOSCRIPT');
    expect(await pc).toBe('BusUnconfirmedError:the redis connection failed before it confirmed the publish (Connection is closed.)');
    expect(w.size).toBe(0);
  });

  it('refuses at once, without calling send, over the bound; a send that throws is refused', async () => {
    const w = make(2);
    const held = [command(), command()];
    for (const h of held) void w.run(h.sent);
    const send = vi.fn(() => Promise.resolve(1));
    await expect(w.run(send)).rejects.toBeInstanceOf(BusRefusedError);
    expect(send).not.toHaveBeenCalled();
    held[0]!.ok(1);
    await Promise.resolve();
    await Promise.resolve();
    expect(await outcome(w.run(send))).toBe('ok:1');
    const w2 = make();
    expect(
      await outcome(
        w2.run(() => {
          throw new Error('redis is not connected');
        }),
      ),
    ).toBe('BusRefusedError:redis is not connected');
    expect(w2.size).toBe(0);
  });

  it('answers unconfirmed at the deadline, keeps counting the command until the server answers, and refuses meanwhile', async () => {
    const w = make(10);
    const a = command();
    const pa = outcome(w.run(a.sent));
    vi.advanceTimersByTime(999);
    expect(w.refusal()).toBeUndefined();
    vi.advanceTimersByTime(1);
    expect(await pa).toBe('BusUnconfirmedError:redis did not confirm the publish within 1000 ms');
    expect(w.size).toBe(1);
    expect(w.refusal()).toBe('redis has not answered for 1000 ms');
    await expect(w.run(() => Promise.resolve(1))).rejects.toBeInstanceOf(BusRefusedError);
    a.ok(1); // the late answer changes nothing for the caller, frees the slot
    await Promise.resolve();
    await Promise.resolve();
    expect(w.size).toBe(0);
    expect(w.refusal()).toBeUndefined();
  });

  it('times each command from its own send, with one timer', async () => {
    const w = make(10);
    const a = command();
    const b = command();
    const pa = outcome(w.run(a.sent));
    vi.advanceTimersByTime(600);
    const pb = outcome(w.run(b.sent));
    a.ok(1);
    expect(await pa).toBe('ok:1');
    vi.advanceTimersByTime(500); // a's deadline passed, b's not yet
    let bSettled = false;
    void pb.then(() => (bSettled = true));
    await Promise.resolve();
    expect(bSettled).toBe(false);
    vi.advanceTimersByTime(500); // b's own deadline: 1000 ms after its send at 600

    expect(await pb).toBe('BusUnconfirmedError:redis did not confirm the publish within 1000 ms');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('close answers everything still waiting as unconfirmed', async () => {
    const w = make();
    const p = outcome(w.run(command().sent));
    w.close();
    expect(await p).toMatch(/^BusUnconfirmedError:/);
    expect(BusUnconfirmedError.name).toBe('BusUnconfirmedError');
  });
});
