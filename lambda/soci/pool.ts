// Bounded concurrency: at most `limit` tasks at once. The first failure stops new tasks from starting and
// aborts the running ones (through the signal each task receives), then is rethrown once all have settled.

export async function mapPool<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number, signal: AbortSignal) => Promise<R>,
  parent?: AbortSignal,
): Promise<R[]> {
  const controller = new AbortController();
  const onParentAbort = () => controller.abort(parent?.reason);
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener('abort', onParentAbort, { once: true });

  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && !controller.signal.aborted && next < items.length) {
      const index = next++;
      try {
        results[index] = await task(items[index]!, index, controller.signal);
      } catch (error) {
        // Later failures are usually the abort this one caused; the first is the cause.
        if (failure === undefined) {
          failure = { error };
          controller.abort(error);
        }
      }
    }
  };
  try {
    const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker);
    await Promise.all(workers);
  } finally {
    parent?.removeEventListener('abort', onParentAbort);
  }
  if (failure !== undefined) throw failure.error;
  parent?.throwIfAborted();
  return results;
}
