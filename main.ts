/**
 * The cdktf app: instantiates the example stacks (`cdktf synth`, `npm run synth`).
 */
import { App } from 'cdktf';
import { BatchWorkersStack, DeveloperBoxesStack, FleetStack } from './stacks';

/** The app with every example stack; `outdir` defaults to `CDKTF_OUTDIR` or `cdktf.out`. */
export function createApp(outdir?: string): App {
  const app = new App(outdir ? { outdir } : {});
  new DeveloperBoxesStack(app, 'developer-boxes');
  new BatchWorkersStack(app, 'batch-workers');
  new FleetStack(app, 'fleet');
  return app;
}

if (require.main === module) {
  createApp().synth();
}
