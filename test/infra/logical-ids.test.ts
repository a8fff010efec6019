/**
 * Construct ids are a public contract: CloudFormation knows a resource by its logical id, and a
 * renamed construct is a resource deleted and another created (a log group, a lease table, a role
 * others reference). logical-ids.json records every logical id, with its type, that four
 * configurations synthesize; a refactoring of infra/ must leave them as they are. A resource added on
 * purpose is added to the file in the same change (`PGWARDEN_RECORD_LOGICAL_IDS=1 npx vitest run
 * test/infra/logical-ids.test.ts` rewrites it; review the diff: only additions belong there).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DISCOVERY_CONFIG, everyOptInConfig, exampleConfig, type Json, synth } from './synth.ts';

const RECORD = new URL('./logical-ids.json', import.meta.url);

const CONFIGURATIONS: Record<string, () => Json> = {
  'the example configuration': () => synth(exampleConfig()).template.toJSON(),
  'demo mode': () => synth({}, { demo: true }).template.toJSON(),
  'a discovery configuration': () => synth(DISCOVERY_CONFIG).template.toJSON(),
  'every opt-in': () => synth(everyOptInConfig()).template.toJSON(),
};

/** `Resources/<id>` with its type, and `Outputs/<id>`, sorted. */
function logicalIds(template: Json): string[] {
  return [
    ...Object.entries(template.Resources as Record<string, { Type: string }>).map(
      ([id, resource]) => `Resources/${id} ${resource.Type}`,
    ),
    ...Object.keys(template.Outputs ?? {}).map((id) => `Outputs/${id}`),
  ].sort();
}

describe('logical ids', () => {
  const recorded: Record<string, string[]> = JSON.parse(readFileSync(RECORD, 'utf8'));
  const current = Object.fromEntries(
    Object.entries(CONFIGURATIONS).map(([name, build]) => [name, logicalIds(build())]),
  );
  if (process.env.PGWARDEN_RECORD_LOGICAL_IDS === '1')
    writeFileSync(RECORD, `${JSON.stringify(current, null, 2)}\n`);

  for (const name of Object.keys(CONFIGURATIONS)) {
    it(`are the recorded ones for ${name}`, () => {
      expect(current[name]).toEqual(recorded[name]);
    });
  }
});
