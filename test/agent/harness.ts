/**
 * Test harness for the agent: the REAL bundled agent process, moto (EC2, SNS → SQS,
 * SSM, S3), a fake IMDS serving the tags of an instance launched in moto, a proc root
 * the test rewrites, and a counting loopback proxy in front of moto (to count API calls
 * and to make the API unreachable by closing its port).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeTagsCommand,
  EC2Client,
  RunInstancesCommand,
  StartInstancesCommand,
} from '@aws-sdk/client-ec2';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { buildAgentBundle, type AgentBundle } from '../../lambda-agent/agent/build';
import type { AgentConfigDocument } from '../../lambda-agent/contract/bootstrap';
import { parseEvent, type SmvmEvent } from '../../lambda-agent/contract/events';
import { loadPolicy } from '../../lambda-agent/policy/parse';
import type { PolicyDocument } from '../../lambda-agent/policy/model';
import { startFakeImds, type FakeImds } from '../support/fake-imds';
import type { MotoServer } from '../support/moto';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a value other than undefined/false, or fails with `what`. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`fails to see ${what} within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `smvm-${prefix}-`));
}

let bundled: Promise<AgentBundle> | undefined;
/** The agent bundle, built once per test file. */
export function agentBundle(): Promise<AgentBundle> {
  bundled ??= buildAgentBundle(join(tempDir('bundle'), 'agent.js'));
  return bundled;
}

// ------------------------------------------------------------------ proc root

export interface ProcRoot {
  readonly dir: string;
  readonly utmpPath: string;
  /** Busy: the CPU counters advance as ~90 % busy; idle: ~0 %. */
  setBusy(busy: boolean): void;
  /** Replaces one file's content (relative to the root), or deletes it with `undefined`. */
  write(name: string, content: string | undefined): void;
  /** Makes a process named `comm` appear (pid) or disappear. */
  setProcess(pid: number, comm: string | undefined): void;
  /** Stops advancing the counters. */
  freeze(): void;
  stop(): void;
}

/** A fake /proc in the real formats, its counters advanced by a timer (2 CPUs at USER_HZ 100). */
export function createProcRoot(opts: { bootTimeSec: number; busy?: boolean }): ProcRoot {
  const dir = tempDir('proc');
  const utmpPath = join(dir, 'utmp');
  writeFileSync(utmpPath, Buffer.alloc(0));
  let busy = opts.busy ?? false;
  let frozen = false;
  let user = 100_000;
  let idle = 900_000;
  let rx = 1_000_000;
  let tx = 2_000_000;
  let last = Date.now();
  const write = (name: string, content: string | undefined) => {
    const path = join(dir, name);
    if (content === undefined) rmSync(path, { force: true, recursive: true });
    else {
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path + '.tmp', content);
      renameSync(path + '.tmp', path);
    }
  };
  const flush = () => {
    const now = Date.now();
    const jiffies = Math.round(((now - last) / 1000) * 200);
    last = now;
    if (busy) {
      user += Math.round(jiffies * 0.9);
      idle += jiffies - Math.round(jiffies * 0.9);
    } else idle += jiffies;
    rx += 100; // ~500 B/s at 200 ms steps: far below any idle threshold
    tx += 100;
    write('stat', `cpu  ${user} 0 0 ${idle} 0 0 0 0 0 0\ncpu0 ${user} 0 0 ${idle} 0 0 0 0 0 0\nbtime ${opts.bootTimeSec}\nprocesses 1\n`);
    write(
      'net/dev',
      'Inter-|   Receive                                                |  Transmit\n' +
        ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n' +
        `    lo: 5000 10 0 0 0 0 0 0 5000 10 0 0 0 0 0 0\n  eth0: ${rx} 10 0 0 0 0 0 0 ${tx} 12 0 0 0 0 0 0\n`,
    );
  };
  flush();
  write('meminfo', 'MemTotal: 1000000 kB\nMemFree: 500000 kB\nMemAvailable: 600000 kB\n');
  write('loadavg', '0.01 0.02 0.03 1/100 4242\n');
  write('diskstats', '   8       0 sda 100 0 1000 50 200 0 2000 80 0 120 130 0 0 0 0 0 0\n');
  const timer = setInterval(() => !frozen && flush(), 200);
  return {
    dir,
    utmpPath,
    setBusy: (b) => {
      flush();
      busy = b;
    },
    write,
    setProcess: (pid, comm) => {
      write(`${pid}`, undefined);
      if (comm !== undefined) write(`${pid}/comm`, `${comm}\n`);
    },
    freeze: () => {
      frozen = true;
    },
    stop: () => clearInterval(timer),
  };
}

// ------------------------------------------------------------------ cloud (moto)

export interface TopicQueue {
  readonly topicArn: string;
  readonly queueUrl: string;
}

export class Cloud {
  readonly ec2: EC2Client;
  readonly sns: SNSClient;
  readonly sqs: SQSClient;
  readonly ssm: SSMClient;
  private ami?: string;
  private readonly received = new Map<string, SmvmEvent[]>();

  constructor(readonly moto: MotoServer) {
    const cfg = moto.sdkConfig();
    this.ec2 = new EC2Client(cfg);
    this.sns = new SNSClient(cfg);
    this.sqs = new SQSClient(cfg);
    this.ssm = new SSMClient(cfg);
  }

  async launch(tags: Record<string, string>): Promise<string> {
    this.ami ??= 'ami-12c6146b';
    const r = await this.ec2.send(
      new RunInstancesCommand({
        ImageId: this.ami,
        MinCount: 1,
        MaxCount: 1,
        InstanceType: 't3.micro',
        TagSpecifications: [{ ResourceType: 'instance', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }],
      }),
    );
    return r.Instances![0].InstanceId!;
  }

  async state(id: string): Promise<string | undefined> {
    const r = await this.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    return r.Reservations?.[0]?.Instances?.[0]?.State?.Name;
  }

  async start(id: string): Promise<void> {
    await this.ec2.send(new StartInstancesCommand({ InstanceIds: [id] }));
  }

  async tags(id: string): Promise<Record<string, string>> {
    const r = await this.ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [id] }] }));
    return Object.fromEntries((r.Tags ?? []).map((t) => [t.Key!, t.Value!]));
  }

  async setTags(id: string, tags: Record<string, string>): Promise<void> {
    await this.ec2.send(new CreateTagsCommand({ Resources: [id], Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }));
  }

  /** A topic with an SQS queue subscribed with raw delivery. */
  async topicWithQueue(name: string): Promise<TopicQueue> {
    const topicArn = (await this.sns.send(new CreateTopicCommand({ Name: name }))).TopicArn!;
    const queueUrl = (await this.sqs.send(new CreateQueueCommand({ QueueName: `${name}-q` }))).QueueUrl!;
    const queueArn = (await this.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!
      .QueueArn!;
    await this.sns.send(
      new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: queueArn, Attributes: { RawMessageDelivery: 'true' } }),
    );
    return { topicArn, queueUrl };
  }

  /** Every event received on the queue so far (validated with parseEvent), oldest first. */
  async events(q: TopicQueue): Promise<SmvmEvent[]> {
    const list = this.received.get(q.queueUrl) ?? [];
    this.received.set(q.queueUrl, list);
    for (;;) {
      const r = await this.sqs.send(new ReceiveMessageCommand({ QueueUrl: q.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
      const msgs = r.Messages ?? [];
      if (msgs.length === 0) return list;
      for (const m of msgs) list.push(parseEvent(m.Body!));
      await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: q.queueUrl,
          Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
    }
  }

  /** Stores a policy document in SSM; returns its hash (the policy-version tag value). */
  async putPolicy(name: string, doc: PolicyDocument): Promise<string> {
    await this.ssm.send(new PutParameterCommand({ Name: name, Value: JSON.stringify(doc), Type: 'String', Overwrite: true }));
    return loadPolicy(doc).hash;
  }
}

/** A fake IMDS for one moto instance; its tags are read from moto (cached for 250 ms). */
export function imdsFor(cloud: Cloud, instanceId: string): Promise<FakeImds> {
  let cache: { at: number; tags: Promise<Record<string, string>> } | undefined;
  return startFakeImds({
    instanceId,
    tags: () => {
      if (!cache || Date.now() - cache.at > 250) cache = { at: Date.now(), tags: cloud.tags(instanceId) };
      return cache.tags;
    },
  });
}

// ------------------------------------------------------------------ counting proxy

export interface CountingProxy {
  readonly endpoint: string;
  /** Calls by operation (`ec2 StopInstances`, `ssm GetParameter`, `sns Publish`, …). */
  readonly counts: Map<string, number>;
  count(op: string): number;
  /** Closes the listening port: every later call meets a closed port. */
  close(): Promise<void>;
}

/** A loopback proxy in front of moto that counts the agent's calls by operation. */
export async function countingProxy(target: string): Promise<CountingProxy> {
  const counts = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const auth = String(req.headers.authorization ?? '');
      const service = /Credential=[^/]+\/[^/]+\/[^/]+\/([^/]+)\//.exec(auth)?.[1] ?? '?';
      const op =
        String(req.headers['x-amz-target'] ?? '')
          .split('.')
          .pop() ||
        new URLSearchParams(body.toString('utf8')).get('Action') ||
        `${req.method} ${req.url}`;
      counts.set(`${service} ${op}`, (counts.get(`${service} ${op}`) ?? 0) + 1);
      const out = http.request(target + (req.url ?? '/'), { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      out.on('error', () => res.destroy());
      out.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts,
    count: (op) => counts.get(op) ?? 0,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// ------------------------------------------------------------------ the agent process

export interface AgentProcess {
  readonly proc: ChildProcess;
  /** Parsed JSON log lines (stdout), in order. */
  readonly lines: Array<Record<string, unknown>>;
  /** Everything written to stderr. */
  stderr(): string;
  waitForLine(what: string, pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  readonly exited: boolean;
}

export function spawnAgent(file: string, env: Record<string, string>, args: string[] = []): AgentProcess {
  const proc = spawn(process.execPath, [...args, file], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  let err = '';
  let buf = '';
  let exited = false;
  const exit = new Promise<number | null>((r) => proc.once('exit', (code) => ((exited = true), r(code))));
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
    buf += c;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ unparsed: line });
      }
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  return {
    proc,
    lines,
    stderr: () => err,
    get exited() {
      return exited;
    },
    waitForLine: (what, pred, timeoutMs = 10_000) => waitFor(what, () => lines.find(pred), timeoutMs, 50),
    kill: async (signal = 'SIGTERM') => {
      if (!exited) proc.kill(signal);
      return exit;
    },
  };
}

/** A home directory with agent.json (and optionally the management-id file). */
export function agentHome(config: AgentConfigDocument, managementId?: string): string {
  const home = tempDir('home');
  writeFileSync(join(home, 'agent.json'), JSON.stringify(config));
  if (managementId) writeFileSync(join(home, 'management-id'), managementId + '\n');
  return home;
}

export function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
