/** The event EventBridge sends a scheduled function (the monitor, the sweep). */
import { ValidationError } from './errors.ts';
import { object, oneOf, optional, parse, string } from './validate.ts';

/** An EventBridge scheduled event, or `{}` for a manual test invoke. */
const scheduleEvent = object(
  {
    source: optional(oneOf(['aws.events', 'aws.scheduler'] as const)),
    'detail-type': optional(oneOf(['Scheduled Event'] as const)),
    id: optional(string()),
  },
  { strict: false },
);

/** Accepts a scheduled event or `{}`; anything else is a `ValidationError` naming the field. */
export function parseScheduleEvent(event: unknown): void {
  parse(scheduleEvent, event ?? {}, 'scheduled event', ValidationError);
}
