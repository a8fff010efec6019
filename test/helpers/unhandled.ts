/**
 * Records every unhandled promise rejection and uncaught exception in this process, for files that
 * prove faults leave none behind.
 */
export interface UnhandledRecorder {
  /** What was recorded so far, rendered as text. */
  readonly errors: string[];
  stop(): void;
}

export function recordUnhandled(): UnhandledRecorder {
  const errors: string[] = [];
  const onRejection = (reason: unknown) => {
    errors.push(
      `unhandledRejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`,
    );
  };
  const onException = (error: Error) => {
    errors.push(`uncaughtException: ${error.stack ?? error.message}`);
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return {
    errors,
    stop() {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
    },
  };
}
