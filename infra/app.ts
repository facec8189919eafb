// CDK app entry (cdk.json: `npx tsx infra/app.ts`). Settings come from context, e.g.
//   npx cdk deploy -c repositories='app-*,ml/trainer' [-c stackName=SociIndexerTeamA] [-c minLayerSize=...]
// cdk-nag's AwsSolutions checks run on every synth; a finding stops it unless acknowledged in code.
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SociIndexerConfigError } from './soci-indexer.ts';
import { SociIndexerStack, settingsFromContext } from './stack.ts';

const app = new App();
try {
  const stackName = String(app.node.tryGetContext('stackName') ?? 'SociIndexer');
  if (!/^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(stackName)) {
    throw new SociIndexerConfigError(
      `context stackName: ${JSON.stringify(stackName)} is not a CloudFormation stack name (letter, then letters, digits, -)`,
    );
  }
  new SociIndexerStack(app, stackName, { settings: settingsFromContext((key) => app.node.tryGetContext(key)) });
} catch (err) {
  if (!(err instanceof SociIndexerConfigError)) throw err;
  console.error(`soci-indexer: ${err.message}`);
  process.exit(1);
}
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
