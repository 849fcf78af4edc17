import { describe, expect, it } from 'vitest';
import { TurnBudget } from './turn-budget.js';

const busy = (ms: number): void => {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* spin */ }
};

describe('TurnBudget', () => {
  it("lets work go on until the turn's share is spent, then hands everyone the next turn", async () => {
    const budget = new TurnBudget(5);
    expect(budget.spend()).toBeUndefined();
    busy(2);
    expect(budget.spend()).toBeUndefined();
    busy(4);
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
    const budget = new TurnBudget(3);
    budget.spend();
    busy(4);
    await new Promise((r) => setTimeout(r, 20));
    expect(budget.spend()).toBeUndefined();
  });
});
