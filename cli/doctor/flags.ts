/** Flags `pgwarden doctor` and `pgwarden test-page` share: which deployment, which mode. */
import type { Issue } from '../../shared/errors.ts';
import { STACK_NAME, STACK_NAME_RULE } from '../../shared/stack-name.ts';
import type { FlagReader } from '../args.ts';

const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

/** `--stack` and `--region`, checked; shared with test-page. */
export function readStackFlags(reader: FlagReader): { stack?: string; region?: string } {
  const stack = reader.string('stack');
  const region = reader.string('region');
  if (stack !== undefined && !STACK_NAME.test(stack))
    reader.issues.push({
      path: '--stack',
      received: JSON.stringify(stack),
      problem: 'is not a CloudFormation stack name',
      fix: `${STACK_NAME_RULE}: the name you deployed with (PgWarden, or -c stackName=...).`,
    });
  if (region !== undefined && !REGION.test(region))
    reader.issues.push({
      path: '--region',
      received: JSON.stringify(region),
      problem: 'is not an AWS region',
      fix: 'Write it as AWS does, e.g. --region eu-west-1.',
    });
  if (region !== undefined && stack === undefined)
    reader.issues.push({
      path: '--region',
      received: JSON.stringify(region),
      problem: 'applies only to --stack',
      fix: 'Add --stack <name>, or leave --region out.',
    });
  return { ...(stack !== undefined ? { stack } : {}), ...(region !== undefined ? { region } : {}) };
}

/** Refuses more than one of the given modes on one command line. */
export function oneMode(reader: FlagReader, modes: Record<string, boolean>): void {
  const chosen = Object.entries(modes).filter(([, on]) => on);
  if (chosen.length > 1) {
    const issue: Issue = {
      path: chosen.map(([flag]) => flag).join(' '),
      received: chosen.map(([flag]) => flag).join(' '),
      problem: 'are alternatives: each names what to check',
      fix: `Pass one of ${Object.keys(modes).join(', ')}.`,
    };
    reader.issues.push(issue);
  }
}
