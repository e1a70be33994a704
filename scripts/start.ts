/**
 * `npm start`: synthesizes the example stacks into cdktf.out/ and runs the live demo on
 * a local AWS emulator (scripts/demo/run.ts). Ctrl-C stops it and cleans up.
 */
process.env.CHECKPOINT_DISABLE = '1';
// The SDK's notice that its 2027 releases will need Node 22 says nothing about the demo.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

async function main(): Promise<number> {
  // Imported after the environment is set, so that cdktf reads it.
  const { runDemo, DemoError } = await import('./demo/run');
  const abort = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    if (interrupts > 1) process.exit(130); // a second Ctrl-C: leave now (moto dies with our pipe)
    console.error(`\n${sig}: stopping the demo and cleaning up…`);
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await runDemo({ outdir: 'cdktf.out', signal: abort.signal });
    return 0;
  } catch (e) {
    if (abort.signal.aborted) return 130;
    const message = e instanceof DemoError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e);
    console.error(`\nnpm start failed: ${message}`);
    return 1;
  }
}

main().then((code) => process.exit(code));
