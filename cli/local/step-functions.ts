/**
 * Step Functions on this machine: runs the same state-machine definition CDK deploys with
 * aws-local-stepfunctions, and answers the Step Functions API calls pgwarden makes
 * (StartExecution, DescribeExecution, ListExecutions, StopExecution) with the same semantics, so
 * `openIncident` works unchanged against it. Lambda tasks are bound to local functions by ARN.
 */
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  ListExecutionsCommand,
  type ListExecutionsCommandOutput,
  StartExecutionCommand,
  type StartExecutionCommandOutput,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { StateMachine } from 'aws-local-stepfunctions';
import { type Clock, systemClock } from '../../shared/clock.ts';

export type LocalFunction = (payload: unknown) => Promise<unknown>;

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

export interface LocalExecution {
  name: string;
  executionArn: string;
  input: string;
  status: ExecutionStatus;
  startDate: Date;
  stopDate?: Date;
  output?: unknown;
  error?: string;
  cause?: string;
  /** The state currently running (for live displays). */
  currentState?: string;
  /** States entered, in order. */
  history: Array<{ state: string; at: number }>;
  /** Failed attempts of a state that its Retry ran again, in order. */
  retries: Array<{ state: string; at: number }>;
  done: Promise<void>;
}

export interface LocalStepFunctionsOptions {
  /** The ASL definition, with resource placeholders already substituted. */
  definition: Record<string, unknown>;
  /** Lambda function ARN → local implementation. */
  functions: Record<string, LocalFunction>;
  stateMachineArn?: string;
  /** Milliseconds each named Wait state lasts instead of its own duration (tests use 0). */
  waitTimeOverrides?: Record<string, number>;
  /** Milliseconds between retries, per state (tests use 0). */
  retryIntervalOverrides?: Record<string, number>;
  clock?: Clock;
  onStateEntered?: (execution: LocalExecution, state: string) => void;
}

interface SfnError extends Error {
  $metadata?: unknown;
}

function sfnError(name: string, message: string): SfnError {
  const error: SfnError = new Error(message);
  error.name = name;
  return error;
}

const LAMBDA_INVOKE = 'arn:aws:states:::lambda:invoke';

/** Every Task state in a definition, branches included: name → resource. */
function taskStates(definition: Record<string, unknown>): Map<string, string> {
  const tasks = new Map<string, string>();
  const visit = (states: Record<string, Record<string, unknown>> | undefined) => {
    for (const [name, state] of Object.entries(states ?? {})) {
      if (state.Type === 'Task') tasks.set(name, String(state.Resource));
      for (const branch of (state.Branches as Array<{ States: Record<string, Record<string, unknown>> }>) ??
        [])
        visit(branch.States);
      const processor = (state.ItemProcessor ?? state.Iterator) as
        | { States?: Record<string, Record<string, unknown>> }
        | undefined;
      if (processor?.States) visit(processor.States);
    }
  };
  visit(definition.States as Record<string, Record<string, unknown>>);
  return tasks;
}

export class LocalStepFunctions {
  readonly stateMachineArn: string;
  readonly executions = new Map<string, LocalExecution>();
  private readonly machine: StateMachine;
  private readonly handlers: Record<string, (input: unknown) => Promise<unknown>> = {};
  private readonly options: LocalStepFunctionsOptions;
  private readonly clock: Clock;
  private readonly aborts = new Map<string, () => void>();
  /** Start order, to sort executions that started in the same millisecond (a manual clock). */
  private readonly order = new Map<string, number>();

  constructor(options: LocalStepFunctionsOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.stateMachineArn =
      options.stateMachineArn ?? 'arn:aws:states:local:000000000000:stateMachine:pgwarden-runbook';
    this.machine = new StateMachine(options.definition as never, {
      validationOptions: { checkArn: false, checkPaths: true },
    });
    for (const [state, resource] of taskStates(options.definition)) {
      this.handlers[state] = async (input: unknown) => {
        if (resource === LAMBDA_INVOKE) {
          const { FunctionName, Payload } = (input ?? {}) as { FunctionName?: string; Payload?: unknown };
          const fn = FunctionName ? options.functions[FunctionName] : undefined;
          if (!fn) throw sfnError('Lambda.ResourceNotFoundException', `no local function ${FunctionName}`);
          return { ExecutedVersion: '$LATEST', StatusCode: 200, Payload: await fn(Payload) };
        }
        const fn = options.functions[resource];
        if (!fn) throw sfnError('States.TaskFailed', `no local implementation of ${resource}`);
        return fn(input);
      };
    }
  }

  /** Answers the subset of the Step Functions API pgwarden calls. */
  async send(command: unknown): Promise<unknown> {
    if (command instanceof StartExecutionCommand) return this.start(command.input);
    if (command instanceof DescribeExecutionCommand) return this.describe(command.input.executionArn ?? '');
    if (command instanceof ListExecutionsCommand) return this.list(command.input);
    if (command instanceof StopExecutionCommand) {
      const execution = this.byArn(command.input.executionArn ?? '');
      this.aborts.get(execution.name)?.();
      return { stopDate: new Date(this.clock.now()) };
    }
    throw sfnError(
      'UnsupportedOperation',
      `the local Step Functions does not implement ${(command as object)?.constructor?.name}`,
    );
  }

  /** Resolves when the execution ends. */
  async wait(name: string): Promise<LocalExecution> {
    const execution = this.executions.get(name);
    if (!execution) throw sfnError('ExecutionDoesNotExist', `no execution ${name}`);
    await execution.done;
    return execution;
  }

  private executionArn(name: string): string {
    return `${this.stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
  }

  private byArn(arn: string): LocalExecution {
    const name = arn.slice(arn.lastIndexOf(':') + 1);
    const execution = this.executions.get(name);
    if (!execution || execution.executionArn !== arn)
      throw sfnError('ExecutionDoesNotExist', `Execution Does Not Exist: '${arn}'`);
    return execution;
  }

  private start(input: StartExecutionCommand['input']): StartExecutionCommandOutput {
    const name = input.name ?? `local-${this.clock.now()}-${Math.random().toString(36).slice(2, 8)}`;
    const rawInput = input.input ?? '{}';
    const existing = this.executions.get(name);
    if (existing) {
      // Standard workflows: same name and input while running is idempotent; anything else is refused.
      if (existing.status === 'RUNNING' && existing.input === rawInput) {
        return { executionArn: existing.executionArn, startDate: existing.startDate, $metadata: {} };
      }
      throw sfnError('ExecutionAlreadyExists', `Execution Already Exists: '${existing.executionArn}'`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(rawInput);
    } catch {
      throw sfnError('InvalidExecutionInput', 'Invalid State Machine Execution Input');
    }
    const executionArn = this.executionArn(name);
    const startDate = new Date(this.clock.now());
    const run = this.machine.run(parsed as never, {
      context: {
        Execution: { Id: executionArn, Name: name, StartTime: startDate.toISOString(), Input: parsed },
        StateMachine: {
          Id: this.stateMachineArn,
          Name: this.stateMachineArn.slice(this.stateMachineArn.lastIndexOf(':') + 1),
        },
      } as never,
      overrides: {
        taskResourceLocalHandlers: this.handlers as never,
        ...(this.options.waitTimeOverrides ? { waitTimeOverrides: this.options.waitTimeOverrides } : {}),
        ...(this.options.retryIntervalOverrides
          ? { retryIntervalOverrides: this.options.retryIntervalOverrides }
          : {}),
      },
      noThrowOnAbort: true,
    });
    const execution: LocalExecution = {
      name,
      executionArn,
      input: rawInput,
      status: 'RUNNING',
      startDate,
      history: [],
      retries: [],
      done: Promise.resolve(),
    };
    this.aborts.set(name, () => {
      run.abort();
      if (execution.status === 'RUNNING') {
        execution.status = 'ABORTED';
        execution.stopDate = new Date(this.clock.now());
      }
    });
    const events = (async () => {
      for await (const event of run.eventLogs) {
        if (event.type === 'StateEntered') {
          execution.currentState = event.state.name;
          execution.history.push({ state: event.state.name, at: this.clock.now() });
          this.options.onStateEntered?.(execution, event.state.name);
        } else if (event.type === 'StateRetried') {
          execution.retries.push({ state: event.state.name, at: this.clock.now() });
        }
      }
    })().catch(() => undefined);
    execution.done = run.result.then(
      (output) => {
        if (execution.status === 'RUNNING') {
          execution.status = 'SUCCEEDED';
          execution.output = output;
          execution.stopDate = new Date(this.clock.now());
        }
      },
      (error: Error) => {
        execution.status = error.name === 'ExecutionTimeoutError' ? 'TIMED_OUT' : 'FAILED';
        // The library wraps the failure (a Fail state's Error and Cause, or a task's error) in `cause`.
        const inner = error.cause instanceof Error ? error.cause : error;
        execution.error = inner.name;
        execution.cause = inner.message;
        execution.stopDate = new Date(this.clock.now());
      },
    );
    execution.done = execution.done
      .then(() => events)
      .finally(() => {
        execution.currentState = undefined;
        this.aborts.delete(name);
      });
    this.executions.set(name, execution);
    this.order.set(name, this.order.size);
    return { executionArn: execution.executionArn, startDate: execution.startDate, $metadata: {} };
  }

  private summary(e: LocalExecution) {
    return {
      executionArn: e.executionArn,
      stateMachineArn: this.stateMachineArn,
      name: e.name,
      status: e.status,
      startDate: e.startDate,
      ...(e.stopDate ? { stopDate: e.stopDate } : {}),
    };
  }

  private describe(arn: string): DescribeExecutionCommandOutput {
    const e = this.byArn(arn);
    return {
      ...this.summary(e),
      input: e.input,
      ...(e.output !== undefined ? { output: JSON.stringify(e.output) } : {}),
      ...(e.error ? { error: e.error, cause: e.cause } : {}),
      $metadata: {},
    };
  }

  private list(input: ListExecutionsCommand['input']): ListExecutionsCommandOutput {
    const all = [...this.executions.values()]
      .filter((e) => !input.statusFilter || e.status === input.statusFilter)
      .sort(
        (a, b) =>
          b.startDate.getTime() - a.startDate.getTime() ||
          (this.order.get(b.name) ?? 0) - (this.order.get(a.name) ?? 0),
      )
      .slice(0, input.maxResults || 100);
    return {
      executions: all.map((e) => this.summary(e)),
      $metadata: {},
    };
  }
}
