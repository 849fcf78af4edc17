import { describe, expect, it } from 'vitest';
import { TurnBudget } from './turn-budget.js';

const busy = (ms: number): void => {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* spin */ }
};

describe('TurnBudget', () => {
  it("lets work go on until the turn's share is spent, then hands everyone the next turn", async () => {
    // Shares far above a preemption's length: on a loaded machine the 2 ms spent of a 5 ms share
    // were once over 5 ms of the clock.
    const budget = new TurnBudget(50);
    expect(budget.spend()).toBeUndefined();
    busy(10);
    expect(budget.spend()).toBeUndefined();
    busy(45);
    const next = budget.spend();
    expect(next).toBeInstanceOf(Promise);
    expect(budget.spend()).toBe(next);
    let resumed = false;
    void next!.then(() => (resumed = true));
    // Not in this turn: its microtasks run, the work stays held.
    await new Promise<void>((r) => process.nextTick(r));
    expect(resumed).toBe(false);
    await next;
    // A new turn, a new share.
    expect(budget.spend()).toBeUndefined();
    expect(budget.spend()).toBeUndefined();
  });

  it('starts a fresh share in a turn that follows an idle one', async () => {
    const budget = new TurnBudget(30);
    budget.spend();
    busy(40);
    await new Promise((r) => setTimeout(r, 20));
    expect(budget.spend()).toBeUndefined();
  });
});
