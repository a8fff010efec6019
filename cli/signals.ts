/**
 * Ctrl-C for the long-running commands: the first one stops everything in order (runbook, faults,
 * metrics, the embedded server); a second one exits at once.
 */
export function onInterrupt(stop: () => Promise<void>): () => void {
  // The embedded PostgreSQL library exits the process on SIGINT itself, before our orderly stop.
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`\nforced exit on second ${signal}\n`);
      process.exit(130);
    }
    stopping = true;
    void stop();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
