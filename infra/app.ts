/**
 * The CDK app: reads the configuration named by the `config` context value (default
 * pgwarden.config.json), builds the one pgwarden stack and checks it with cdk-nag's AWS Solutions
 * rules. A configuration problem ends the synth with its message, never a stack trace.
 *
 *   npx cdk synth                     # uses pgwarden.config.json
 *   npx cdk synth -c config=prod.json
 *   npx cdk synth -c demo=true        # a demo VPC and database; the config file is optional
 *   npx cdk deploy -c stackName=PgWardenStaging -c config=staging.json   # a second stack beside the first
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ConfigError } from '../shared/errors.ts';
import { DEFAULT_CONFIG_FILE, loadConfig } from './config.ts';
import { parseStackName } from './names.ts';
import { PgWardenStack } from './pgwarden-stack.ts';

/** Context values arrive as strings from `-c key=value` and as JSON values from cdk.json. */
function flag(value: unknown): boolean {
  return value === true || value === 'true';
}

const app = new App();
const demo = flag(app.node.tryGetContext('demo'));
const file = String(app.node.tryGetContext('config') ?? DEFAULT_CONFIG_FILE);
try {
  const config = loadConfig({ file, demo });
  if (demo && (config.fleetInput.targets.length > 0 || config.fleetInput.discovery || config.network))
    console.error(
      `pgwarden: demo mode watches only its own database; "fleet" and "network" in ${file} are not used.`,
    );
  const stackName = parseStackName(app.node.tryGetContext('stackName'));
  new PgWardenStack(app, stackName, { config, demo });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}
