/**
 * The runbook state machine's definition exactly as CDK synthesizes it, with the function ARNs it
 * references replaced by fixed fake ARNs, so the workflow tests can run the deployed document locally
 * (binding their handlers to `SYNTHESIZED_FUNCTION_ARNS`).
 */
import { RUNBOOK_PLACEHOLDERS } from '../../shared/runbook/definition.ts';
import { exampleConfig, synth } from './synth.ts';

/** The ARN each runbook function has in the definition `synthesizedRunbookDefinition` returns. */
export const SYNTHESIZED_FUNCTION_ARNS = {
  probe: 'arn:aws:lambda:us-east-1:123456789012:function:pgwarden-probe',
  remediate: 'arn:aws:lambda:us-east-1:123456789012:function:pgwarden-remediate',
  runbook: 'arn:aws:lambda:us-east-1:123456789012:function:pgwarden-runbook',
} as const;

const PSEUDO: Record<string, string> = {
  'AWS::Region': 'us-east-1',
  'AWS::AccountId': '123456789012',
  'AWS::Partition': 'aws',
  'AWS::URLSuffix': 'amazonaws.com',
};

type Intrinsic = string | { [key: string]: unknown };

/** Resolves the intrinsics CDK emits in a definition: Fn::Join, Fn::Sub, Ref and Fn::GetAtt. */
function resolve(value: Intrinsic, arnOf: (logicalId: string) => string): string {
  if (typeof value === 'string') return value;
  if ('Fn::Join' in value) {
    const [delimiter, parts] = value['Fn::Join'] as [string, Intrinsic[]];
    return parts.map((part) => resolve(part, arnOf)).join(delimiter);
  }
  if ('Fn::Sub' in value) {
    const sub = value['Fn::Sub'] as string | [string, Record<string, Intrinsic>];
    const [text, variables] = typeof sub === 'string' ? [sub, {}] : sub;
    return text.replace(/\$\{([^}]+)\}/g, (whole, name: string) =>
      name in variables ? resolve(variables[name] as Intrinsic, arnOf) : (PSEUDO[name] ?? whole),
    );
  }
  if ('Ref' in value) {
    const ref = value.Ref as string;
    const pseudo = PSEUDO[ref];
    if (pseudo) return pseudo;
    return arnOf(ref);
  }
  if ('Fn::GetAtt' in value) {
    const [logicalId] = value['Fn::GetAtt'] as [string, string];
    return arnOf(logicalId);
  }
  throw new Error(`unsupported intrinsic in the definition: ${JSON.stringify(value)}`);
}

/**
 * Synthesizes the stack (with the example configuration), takes the state machine's DefinitionString
 * and DefinitionSubstitutions, binds the probe, remediate and runbook placeholders to
 * `SYNTHESIZED_FUNCTION_ARNS`, and returns the parsed Amazon States Language document.
 */
export function synthesizedRunbookDefinition(): Record<string, unknown> {
  const { template } = synth(exampleConfig());
  const machines = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
  if (machines.length !== 1) throw new Error(`expected one state machine, found ${machines.length}`);
  const properties = (machines[0] as { Properties: Record<string, unknown> }).Properties;
  const substitutions = (properties.DefinitionSubstitutions ?? {}) as Record<string, Intrinsic>;

  const byLogicalId = new Map<string, string>();
  for (const [role, placeholder] of Object.entries(RUNBOOK_PLACEHOLDERS)) {
    const value = substitutions[placeholder] as { 'Fn::GetAtt'?: [string, string] } | undefined;
    const logicalId = value?.['Fn::GetAtt']?.[0];
    if (!logicalId) throw new Error(`the state machine does not substitute \${${placeholder}}`);
    byLogicalId.set(logicalId, SYNTHESIZED_FUNCTION_ARNS[role as keyof typeof SYNTHESIZED_FUNCTION_ARNS]);
  }
  const arnOf = (logicalId: string) => {
    const arn = byLogicalId.get(logicalId);
    if (!arn) throw new Error(`the definition references ${logicalId}, which is not a runbook function`);
    return arn;
  };

  let text = resolve(properties.DefinitionString as Intrinsic, arnOf);
  for (const [name, value] of Object.entries(substitutions))
    text = text.replaceAll(`\${${name}}`, resolve(value, arnOf));
  return JSON.parse(text) as Record<string, unknown>;
}
