#!/usr/bin/env node
/**
 * smvm: the operator's command line. Works against real AWS (standard credential
 * chain, AWS_REGION/AWS_PROFILE) and against a local emulator (AWS_ENDPOINT_URL).
 *
 * Exit codes: 0 ok, 1 failure (AWS, bad stored data), 2 usage, 3 not found / not managed.
 */
import { parseArgs } from 'node:util';
import { CliError, EXIT, defaultClients, type CliContext } from './context';
import * as commands from './commands';

export const USAGE = `smvm — self-managed VMs

usage:
  smvm status [--policy P] [--json]              managed instances, limits left and what happens next
  smvm explain <instance> [--json]               the engine's full decision for one instance now
  smvm snooze <instance> <duration> --reason R   postpone soft rules (idle, schedule, ...) for a while
  smvm extend <instance> lifetime|running|spend <amount> --reason R
                                                 extend a hard limit (announced with who and why)
  smvm events (--policy P | --queue-url URL) [--follow] [--wait 20s] [--json]
                                                 the policy's events, from an SQS queue on its topic
  smvm report [--policy P] [--since 7d|DATE] [--json]
                                                 usage, spend, actions and money saved

durations: 90s, 30m, 8h, 3d or ISO 8601 (PT8H). AWS_ENDPOINT_URL points every call at an emulator.`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        policy: { type: 'string' },
        json: { type: 'boolean' },
        reason: { type: 'string' },
        follow: { type: 'boolean' },
        'queue-url': { type: 'string' },
        wait: { type: 'string' },
        since: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    ctx.err(`${(e as Error).message}\n\n${USAGE}`);
    return EXIT.USAGE;
  }
  const { values: v, positionals: p } = parsed;
  const [cmd, ...args] = p;
  if (v.help || !cmd) {
    ctx.out(USAGE);
    return v.help ? EXIT.OK : EXIT.USAGE;
  }
  const need = (n: number, what: string) => {
    if (args.length !== n) throw new CliError(`${cmd}: expected ${what}\n\n${USAGE}`, EXIT.USAGE);
  };
  try {
    switch (cmd) {
      case 'status':
        need(0, 'no positional arguments');
        return await commands.status(ctx, { policy: v.policy, json: v.json });
      case 'explain':
        need(1, '<instance>');
        return await commands.explain(ctx, { instanceId: args[0], json: v.json });
      case 'snooze':
        need(2, '<instance> <duration>');
        return await commands.snooze(ctx, { instanceId: args[0], duration: args[1], reason: v.reason, json: v.json });
      case 'extend':
        need(3, '<instance> lifetime|running|spend <amount>');
        return await commands.extend(ctx, { instanceId: args[0], limit: args[1], amount: args[2], reason: v.reason, json: v.json });
      case 'events': {
        need(0, 'no positional arguments');
        let waitSeconds: number | undefined;
        if (v.wait) {
          const m = /^(\d+)s?$/.exec(v.wait);
          if (!m) throw new CliError(`--wait '${v.wait}' must be seconds, e.g. 20s`, EXIT.USAGE);
          waitSeconds = Number(m[1]);
        }
        const abort = new AbortController();
        const stop = () => abort.abort();
        process.once('SIGINT', stop);
        try {
          return await commands.events(ctx, {
            policy: v.policy,
            queueUrl: v['queue-url'],
            follow: v.follow,
            json: v.json,
            waitSeconds,
            signal: abort.signal,
          });
        } finally {
          process.removeListener('SIGINT', stop);
        }
      }
      case 'report':
        need(0, 'no positional arguments');
        return await commands.report(ctx, { policy: v.policy, since: v.since, json: v.json });
      default:
        throw new CliError(`unknown command '${cmd}'\n\n${USAGE}`, EXIT.USAGE);
    }
  } catch (e) {
    if (e instanceof CliError) {
      ctx.err(`smvm: ${e.message}`);
      return e.exitCode;
    }
    const name = (e as { name?: string }).name ?? 'Error';
    const hint = /Credential|ExpiredToken|UnrecognizedClient|InvalidClientTokenId/.test(name + (e as Error).message)
      ? ' Check your AWS credentials (AWS_PROFILE, aws sso login) and region.'
      : '';
    ctx.err(`smvm: ${cmd} failed: ${name}: ${(e as Error).message}.${hint}`);
    return EXIT.FAILURE;
  }
}

if (require.main === module) {
  const ctx: CliContext = {
    clients: defaultClients(),
    now: Date.now,
    out: (t) => process.stdout.write(t + '\n'),
    err: (t) => process.stderr.write(t.endsWith('\n') || t.startsWith('\r') ? t : t + '\n'),
    progress: Boolean(process.stderr.isTTY),
  };
  run(process.argv.slice(2), ctx).then((code) => process.exit(code));
}
