/**
 * How long one runbook execution may run. Step Functions fails a Standard execution at 25,000 history
 * events, and an incident may last days with a re-check every second. So the runbook hands a long
 * incident over to a new execution of itself (continue-as-new, carrying the incident record) after a
 * number of verification cycles small enough that, whatever happens in them, one execution stays
 * under 80 % of the limit. The figures are computed from the definition, so changing the state machine
 * changes them.
 */
import { LOOP_HEAD, LOOP_WAIT, runbookDefinition } from './definition.ts';

/** Step Functions' quota: a Standard execution fails when its history reaches this many events. */
export const HISTORY_EVENT_LIMIT = 25_000;
/** What one runbook execution may use: 80 % of the limit. */
export const HISTORY_BUDGET = 20_000;

/** ASL: a retrier that names no MaxAttempts retries three times. */
const DEFAULT_MAX_ATTEMPTS = 3;

interface StateDefinition {
  Type: string;
  Next?: string;
  Default?: string;
  End?: boolean;
  Choices?: Array<{ Next: string }>;
  Catch?: Array<{ Next: string }>;
  Retry?: Array<{ MaxAttempts?: number }>;
}

/**
 * History events one state adds, from the Step Functions `HistoryEvent` types:
 * - Task: TaskStateEntered, LambdaFunctionScheduled (TaskScheduled for an integration), ...Started,
 *   ...Succeeded, TaskStateExited: 5. Each failed attempt its retriers allow adds ...Scheduled,
 *   ...Started and ...Failed or ...TimedOut: 3, up to the sum of the retriers' MaxAttempts.
 * - Choice, Wait, Pass, Succeed: ...StateEntered and ...StateExited: 2.
 * - Fail: FailStateEntered: 1.
 */
export function stateEvents(state: StateDefinition, options: { retries: boolean }): number {
  switch (state.Type) {
    case 'Task': {
      const attempts = (state.Retry ?? []).reduce((n, r) => n + (r.MaxAttempts ?? DEFAULT_MAX_ATTEMPTS), 0);
      return 5 + (options.retries ? 3 * attempts : 0);
    }
    case 'Fail':
      return 1;
    default:
      return 2;
  }
}

/** ExecutionStarted, and ExecutionSucceeded or ExecutionFailed. */
const EXECUTION_EVENTS = 2;

export interface HistoryBudget {
  /** Events of the longest verification cycle (ProbeDatabase to WaitToRecheck), no task failing. */
  readonly cycle: number;
  /** The same cycle with every task failing as often as its retriers allow. */
  readonly cycleWorst: number;
  /** Worst events from the start of an execution to its first wait (a fresh start walks one cycle). */
  readonly start: number;
  /** Worst events of the last cycle: from ProbeDatabase to the end of the execution. */
  readonly end: number;
  /**
   * Cycles after which the runbook hands the incident to a new execution. A page due at that cycle
   * goes first, so an execution walks at most one cycle more.
   */
  readonly cyclesPerExecution: number;
  /** The most events an execution can reach under that rule, every task failing all it may. */
  readonly worstExecution: number;
}

function successors(state: StateDefinition): string[] {
  return [
    ...(state.Next ? [state.Next] : []),
    ...(state.Default ? [state.Default] : []),
    ...(state.Choices ?? []).map((c) => c.Next),
    ...(state.Catch ?? []).map((c) => c.Next),
  ];
}

/**
 * The worst case of one execution of `definition`, whose only loop is `waitState` → `loopHead`: the
 * longest path (by events, every retry taken) through the graph without that edge.
 */
export function historyBudget(
  definition: Record<string, unknown>,
  loopHead = LOOP_HEAD,
  waitState = LOOP_WAIT,
): HistoryBudget {
  const states = definition.States as Record<string, StateDefinition>;
  const edges = (name: string): string[] => {
    const state = states[name];
    if (!state) throw new Error(`the definition references ${name}, which it does not define`);
    return name === waitState ? [] : successors(state);
  };

  /** Longest path from `from` to a state `ends` accepts (inclusive), or -Infinity when none is reachable. */
  const longest = (from: string, ends: (name: string) => boolean, retries: boolean): number => {
    const memo = new Map<string, number>();
    const visiting = new Set<string>();
    const visit = (name: string): number => {
      const known = memo.get(name);
      if (known !== undefined) return known;
      if (visiting.has(name))
        throw new Error(`the definition loops through ${name}, not only through ${waitState}`);
      visiting.add(name);
      const own = stateEvents(states[name] as StateDefinition, { retries });
      let best = ends(name) ? own : Number.NEGATIVE_INFINITY;
      for (const next of edges(name)) best = Math.max(best, own + visit(next));
      visiting.delete(name);
      memo.set(name, best);
      return best;
    };
    return visit(from);
  };

  const isWait = (name: string) => name === waitState;
  const isEnd = (name: string) => {
    const state = states[name] as StateDefinition;
    return state.Type === 'Succeed' || state.Type === 'Fail' || state.End === true;
  };
  const startAt = definition.StartAt as string;
  const cycle = longest(loopHead, isWait, false);
  const cycleWorst = longest(loopHead, isWait, true);
  const start = longest(startAt, isWait, true);
  const end = longest(loopHead, isEnd, true);
  const withoutWaiting = EXECUTION_EVENTS + longest(startAt, isEnd, true);
  const cyclesPerExecution = Math.floor((HISTORY_BUDGET - EXECUTION_EVENTS - start - end) / cycleWorst);
  if (cyclesPerExecution < 1)
    throw new Error(`one cycle of the runbook (${cycleWorst} events) does not fit the history budget`);
  // Between the first wait and the last cycle: at most cyclesPerExecution full cycles (the rule above).
  const worstExecution = Math.max(
    withoutWaiting,
    EXECUTION_EVENTS + start + cyclesPerExecution * cycleWorst + end,
  );
  return { cycle, cycleWorst, start, end, cyclesPerExecution, worstExecution };
}

/** The deployed runbook's budget, computed once. */
export const RUNBOOK_HISTORY: HistoryBudget = historyBudget(runbookDefinition());
