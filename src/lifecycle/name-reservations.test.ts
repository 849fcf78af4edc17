import { describe, expect, it } from 'vitest';
import { AlreadyExistsError } from '../errors.js';
import { NameReservations } from './name-reservations.js';

const gate = () => {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { opened, open };
};

describe('NameReservations', () => {
  it('hands a create its caller gave up on to the next request with the name, once', async () => {
    const names = new NameReservations('pod');
    const gaveUp = new AbortController();
    gaveUp.abort();
    await expect(names.run('web', 'id-1', gaveUp.signal, async () => undefined)).resolves.toEqual({ id: 'id-1', adopted: false });
    await expect(names.run('web', 'id-2', new AbortController().signal, async () => undefined)).resolves.toEqual({ id: 'id-1', adopted: true });
    await expect(names.run('web', 'id-3', new AbortController().signal, async () => undefined)).rejects.toBeInstanceOf(AlreadyExistsError);
  });

  it('hands a create to a retry that came while it ran, and then holds the name (the caller gave up meanwhile)', async () => {
    const names = new NameReservations('pod');
    const caller = new AbortController();
    const g = gate();
    const first = names.run('web', 'id-1', caller.signal, () => g.opened);
    caller.abort();
    const retry = names.run('web', 'id-2', new AbortController().signal, async () => undefined);
    g.open();
    await expect(first).resolves.toEqual({ id: 'id-1', adopted: false });
    await expect(retry).resolves.toEqual({ id: 'id-1', adopted: true });
    // The retry has it: a third request is a second pod of that name.
    await expect(names.run('web', 'id-3', new AbortController().signal, async () => undefined)).rejects.toBeInstanceOf(AlreadyExistsError);
  });

  it('releases the name of a create that failed, to the retry waiting on it too', async () => {
    const names = new NameReservations('pod');
    const g = gate();
    const first = names.run('web', 'id-1', new AbortController().signal, async () => {
      await g.opened;
      throw new Error('no room');
    });
    const retry = names.run('web', 'id-2', new AbortController().signal, async () => undefined);
    g.open();
    await expect(first).rejects.toThrow('no room');
    await expect(retry).rejects.toThrow('no room');
    await expect(names.run('web', 'id-3', new AbortController().signal, async () => undefined)).resolves.toEqual({ id: 'id-3', adopted: false });
  });
});
