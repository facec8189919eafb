// Waits measured between two requests arriving at a test server in the test's own process
// (performance.now() at arrival), to prove that a client slept what it was told to.
import assert from 'node:assert/strict';

/**
 * How much sooner than asked a Node timer may end on performance.now()'s clock. Timers count whole
 * milliseconds of the event loop's clock, which is read when the loop wakes and truncated (libuv reads a
 * coarse clock when it has 1 ms resolution): a setTimeout(d) started late in a millisecond can end after
 * d - 1 ms (d - 2 with the coarse clock) when something else wakes the loop near its end. Measured here:
 * 12-15 % of 5 ms client sleeps, with other timers running, arrived 0.1-0.3 ms short of 5 ms.
 */
export const TIMER_EARLY_MS = 2;

/** The client waited `gap` ms between two requests: at least `ms`, as far as Node's timers can tell. */
export function assertWaitedAtLeast(gap: number, ms: number, what: string): void {
  assert.ok(gap >= ms - TIMER_EARLY_MS, `${what}: waited ${gap.toFixed(1)} ms, expected at least ${ms}`);
}
