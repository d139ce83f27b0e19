/**
 * Polls `probe` every 20 ms until it answers something other than `undefined`, and answers that;
 * fails after `timeoutMs`. For what a test waits on in the background (a sweep, a refresh ahead, a
 * process starting), where a fixed sleep would either be too short on a busy machine or waste time.
 */
export async function until<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Polls `check` until it holds; fails after `timeoutMs`. */
export async function untilTrue(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  await until(async () => ((await check()) ? true : undefined), timeoutMs);
}
