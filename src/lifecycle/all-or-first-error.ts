// Steps run side by side whose failure must not leave another one running behind it: a rollback
// that starts while a sibling step is still making something would miss what that step makes.

/** Waits for every one of `steps` to end (none left running behind a failure), then throws the first error. */
export async function allOrFirstError(steps: readonly (Promise<unknown> | undefined)[]): Promise<void> {
  const failed = (await Promise.allSettled(steps)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
