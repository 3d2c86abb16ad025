import type { Context } from '../context.js';

/**
 * Runs `pass` every `everyMs` in this process, one run at a time (the next is scheduled when the
 * last ends); a failure is logged and the next tick tries again. stop() waits for the run in flight.
 */
export function startTicker(
  ctx: Context,
  what: string,
  everyMs: number,
  pass: (signal: AbortSignal) => Promise<unknown>,
): { stop(): Promise<void> } {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const schedule = () => {
    if (controller.signal.aborted) return;
    timer = setTimeout(run, everyMs);
    timer.unref();
  };
  const run = () => {
    running = pass(controller.signal)
      .then(
        () => undefined,
        (error) => {
          if (!controller.signal.aborted) ctx.log.warn({ err: error }, `${what} failed; will try again`);
        },
      )
      .then(schedule);
  };
  schedule();
  return {
    async stop() {
      controller.abort();
      clearTimeout(timer);
      await running;
    },
  };
}
