import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Renders a resource the way cdk-nag names it in an `AwsSolutions-IAM5[Resource::...]` finding:
 * `Fn::Join` parts concatenated, `Ref` as `<Id>`, `Fn::GetAtt` as `<Id.Attribute>`.
 */
function flatten(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (value && typeof value === 'object') {
    const node = value as Record<string, unknown>;
    if (Array.isArray(node['Fn::Join'])) {
      const [delimiter, items] = node['Fn::Join'] as [string, unknown[]];
      return items.map(flatten).join(delimiter);
    }
    if ('Fn::Sub' in node) return flatten(node['Fn::Sub']);
    if (Array.isArray(node['Fn::GetAtt'])) {
      const [resource, attribute] = node['Fn::GetAtt'] as [unknown, unknown];
      return `<${flatten(resource)}.${flatten(attribute)}>`;
    }
    if ('Fn::ImportValue' in node) return flatten(node['Fn::ImportValue']);
    if ('Ref' in node) return `<${flatten(node.Ref)}>`;
  }
  return JSON.stringify(value);
}

/**
 * Acknowledges the AwsSolutions-IAM5 finding of each wildcard resource granted on purpose to `scope`'s
 * policies, one finding at a time, so a wildcard added later is still reported.
 */
export function acknowledgeWildcardResources(
  scope: IConstruct,
  resources: readonly string[],
  reason: string,
): void {
  const stack = Stack.of(scope);
  for (const resource of new Set(resources.map((r) => flatten(stack.resolve(r))))) {
    if (!resource.includes('*')) continue;
    Validations.of(scope).acknowledge({ id: `AwsSolutions-IAM5[Resource::${resource}]`, reason });
  }
}
