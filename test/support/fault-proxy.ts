/**
 * Test helper: a loopback HTTP proxy placed in front of moto (clients use its URL as
 * their endpoint) that injects faults at configurable rates, drawn from a seeded PRNG:
 *
 * - `throttle`: the service's own throttling error: EC2's `RequestLimitExceeded`
 *   (HTTP 503, `<Response><Errors><Error>…`), the query API's `Throttling` (SNS, HTTP 400,
 *   `<ErrorResponse>…`), the JSON protocols' `ThrottlingException` (SSM, SQS, pricing);
 * - `http500` / `http503`: an internal error / service unavailable in the same formats;
 * - `timeout`: the request is held and never answered (the client must time out);
 * - `drop`: the connection is destroyed (the client sees a reset / "socket hang up");
 * - `slow`: the answer is delayed.
 *
 * Each request is recognised (service from the SigV4 credential scope, X-Amz-Target,
 * `/service/<s>/operation/<op>` paths or the host; action from the form body's
 * `Action=`, X-Amz-Target or the path), so rules can target a service, an action and a
 * caller (the access key id). A fault fires `before` the request is forwarded (nothing
 * happened) or `after` (the call took effect upstream but the client sees an error —
 * the nasty case for writes such as StopInstances, TerminateInstances, CreateTags and
 * Publish). Every request is recorded (service, action, caller, instance ids, tags,
 * published event, time, fault) for the model checks, and injected faults are counted
 * by kind.
 *
 * With `ec2Fidelity` the proxy also corrects two moto gaps that matter to accounting
 * (see /work/shared/REFERENCE.md): moto stamps transitions with the wall clock and
 * never moves `LaunchTime` on a start. The proxy remembers, on the test's `clock`, when
 * each instance was last launched/started and stopped, and rewrites `launchTime` and the
 * time in `reason` ("User initiated (…)") in DescribeInstances answers; and, like EC2,
 * it refuses to stop, start or reboot a terminated instance (`IncorrectInstanceState`)
 * where moto would revive it.
 */
import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** The kinds of fault the proxy injects. */
export const FAULT_KINDS = ['throttle', 'http500', 'http503', 'timeout', 'drop', 'slow'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** `before`: the request never reaches the upstream. `after`: it does, the client still sees the fault. */
export type FaultPhase = 'before' | 'after';

type Matcher = string | RegExp | ReadonlyArray<string>;

/** One fault rule: which requests, how often, what happens. The first rule that fires wins. */
export interface FaultRule {
  /** Service (`ec2`, `sns`, `ssm`, `sqs`, `monitoring`, `pricing`, …). @default - any */
  readonly service?: Matcher;
  /** Action (`StopInstances`, `Publish`, …). @default - any */
  readonly action?: Matcher;
  /** Caller: the access key id of the request's credentials. @default - any */
  readonly principal?: Matcher;
  readonly kind: FaultKind;
  /** Probability in [0, 1] that a matching request gets this fault. */
  readonly rate: number;
  /** @default 'before' */
  readonly phase?: FaultPhase;
  /** `slow`: added latency in ms. @default - drawn from `slowMs` */
  readonly delayMs?: number;
}

/** A fault to inject on the next matching requests, whatever the rates. */
export interface ScriptedFault extends Omit<FaultRule, 'rate'> {
  /** How many matching requests get it. @default 1 */
  readonly count?: number;
}

/** What the proxy saw of one request. */
export interface ProxyCall {
  /** 1, 2, … in arrival order. */
  readonly seq: number;
  readonly service: string;
  readonly action: string;
  /** Access key id of the request's credentials, when signed. */
  readonly principal?: string;
  /** Instance ids named by the request (`InstanceId.N`, `ResourceId.N`). */
  readonly instanceIds: readonly string[];
  /** CreateTags / DeleteTags: the tag keys (and values) named. */
  readonly tags?: Readonly<Record<string, string>>;
  /** Form parameters of query-protocol requests. */
  readonly params?: Readonly<Record<string, string>>;
  /** SNS Publish of a JSON message: its `id`, `type` and `instanceId`. */
  readonly event?: { readonly id?: string; readonly type?: string; readonly instanceId?: string };
  /** The test's clock when the request arrived. */
  readonly time: number;
  readonly wallTime: number;
  /** Injected fault, if any. */
  fault?: FaultKind;
  phase?: FaultPhase;
  /** The request reached the upstream. */
  forwarded: boolean;
  /** HTTP status the upstream answered (when forwarded and answered). */
  upstreamStatus?: number;
  /** HTTP status the client received (undefined: none — timeout or drop). */
  status?: number;
  /** EC2 state changes the upstream reported (Stop/Start/Terminate), by instance id. */
  changes?: ReadonlyArray<{ readonly instanceId: string; readonly previous?: string; readonly current?: string }>;
}

/** A state transition the upstream carried out, on the test's clock. */
export interface Transition {
  readonly instanceId: string;
  readonly from?: string;
  readonly to: string;
  readonly time: number;
  readonly principal?: string;
  readonly seq: number;
}

export interface FaultProxyOptions {
  /** Upstream endpoint, e.g. `moto.endpoint`. */
  readonly target: string;
  /** Seed of the PRNG that decides faults and delays. @default 1 */
  readonly seed?: number;
  readonly rules?: readonly FaultRule[];
  /** The test's clock (epoch ms): call times and EC2 fidelity. @default Date.now */
  readonly clock?: () => number;
  /** Correct moto's transition times and terminated-instance revival (see the module doc). @default false */
  readonly ec2Fidelity?: boolean;
  /** A held (`timeout`) request is destroyed after this long, whatever the client does. @default 30000 */
  readonly hangMs?: number;
  /** Range of the `slow` delay, ms. @default [50, 250] */
  readonly slowMs?: readonly [number, number];
  /** Called after a request was forwarded and answered, before the client gets the answer. */
  readonly onForwarded?: (call: ProxyCall) => void | Promise<void>;
}

export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: use it as the clients' endpoint. */
  readonly endpoint: string;
  /** Every request, in arrival order. */
  readonly calls: ProxyCall[];
  /** Transitions carried out by forwarded EC2 calls (with `ec2Fidelity`, on the test's clock). */
  readonly transitions: Transition[];
  /** Injected faults by kind. */
  readonly faults: Record<FaultKind, number>;
  /** Injected faults by `service action kind phase`. */
  faultsBy(): Record<string, number>;
  /** Replaces the rules (an empty list stops random faults). */
  setRules(rules: readonly FaultRule[]): void;
  /** Queues faults for the next matching requests. */
  script(...faults: ScriptedFault[]): void;
  /** Replaces the hook called after each forwarded request. */
  setOnForwarded(hook: FaultProxyOptions['onForwarded']): void;
  /** Forgets calls, transitions and counters (not the EC2 fidelity memory). */
  clearLog(): void;
  /** Forgets everything, EC2 fidelity memory included (after a moto reset). */
  reset(): void;
  close(): Promise<void>;
}

/** Mulberry32: a small, fast, seedable PRNG (uniform in [0, 1)). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------- recognising requests

const TARGET_PREFIXES: Record<string, string> = {
  AmazonSSM: 'ssm',
  AmazonSQS: 'sqs',
  AWSPriceListService: 'pricing',
  GraniteServiceVersion20100801: 'monitoring',
  AWSEvents: 'events',
};

interface Recognised {
  service: string;
  action: string;
  principal?: string;
  params?: Record<string, string>;
  /** The protocol family, which decides the error format. */
  protocol: 'ec2' | 'query' | 'json' | 'other';
}

/** Service, action, caller and protocol of a request. Exported for tests of the proxy itself. */
export function recognise(method: string, url: string, headers: http.IncomingHttpHeaders, body: string): Recognised {
  const auth = String(headers.authorization ?? '');
  const scope = /Credential=([^/,\s]+)\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(auth);
  const principal = scope?.[1];
  let service = scope?.[2];
  let action: string | undefined;
  let params: Record<string, string> | undefined;
  const target = headers['x-amz-target'];
  const path = url.split('?')[0];
  const contentType = String(headers['content-type'] ?? '');
  if (typeof target === 'string' && target.includes('.')) {
    const [prefix, op] = [target.slice(0, target.lastIndexOf('.')), target.slice(target.lastIndexOf('.') + 1)];
    service ??= TARGET_PREFIXES[prefix] ?? prefix.toLowerCase();
    action = op;
  } else if (contentType.includes('x-www-form-urlencoded') || /(^|&)Action=/.test(body)) {
    params = Object.fromEntries(new URLSearchParams(body));
    action = params.Action;
  }
  const rpc = /^\/service\/([^/]+)\/operation\/([^/]+)$/.exec(path);
  if (!action && rpc) {
    service ??= TARGET_PREFIXES[rpc[1]] ?? rpc[1].toLowerCase();
    action = rpc[2];
  }
  if (!service) {
    const host = String(headers.host ?? '');
    service = /^([a-z0-9-]+)\.[a-z0-9-]+\.amazonaws\.com/.exec(host)?.[1] ?? 'unknown';
  }
  if (!action) action = service === 's3' ? `${method} ${path}` : `${method} ${path}`;
  const protocol: Recognised['protocol'] = params ? (service === 'ec2' ? 'ec2' : 'query') : target ? 'json' : 'other';
  return { service, action, ...(principal ? { principal } : {}), ...(params ? { params } : {}), protocol };
}

function instanceIdsOf(params: Record<string, string> | undefined): string[] {
  if (!params) return [];
  const ids: string[] = [];
  for (const [k, v] of Object.entries(params)) if (/^(InstanceId|ResourceId)\.\d+$/.test(k)) ids.push(v);
  return ids;
}

function tagsOf(params: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!params || !/^(CreateTags|DeleteTags)$/.test(params.Action ?? '')) return undefined;
  const tags: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) {
    const m = /^Tag\.(\d+)\.Key$/.exec(k);
    if (m) tags[v] = params[`Tag.${m[1]}.Value`] ?? '';
  }
  return tags;
}

function eventOf(params: Record<string, string> | undefined): ProxyCall['event'] {
  if (!params || params.Action !== 'Publish' || !params.Message) return undefined;
  try {
    const e = JSON.parse(params.Message) as { id?: unknown; type?: unknown; instanceId?: unknown };
    return {
      ...(typeof e.id === 'string' ? { id: e.id } : {}),
      ...(typeof e.type === 'string' ? { type: e.type } : {}),
      ...(typeof e.instanceId === 'string' ? { instanceId: e.instanceId } : {}),
    };
  } catch {
    return {};
  }
}

function matches(m: Matcher | undefined, value: string | undefined): boolean {
  if (m === undefined) return true;
  if (value === undefined) return false;
  if (typeof m === 'string') return m === value;
  if (m instanceof RegExp) return m.test(value);
  return (m as readonly string[]).includes(value);
}

// ---------------------------------------------------------------- error answers

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const EC2_ERRORS: Record<'throttle' | 'http500' | 'http503', [number, string, string]> = {
  throttle: [503, 'RequestLimitExceeded', 'Request limit exceeded.'],
  http500: [500, 'InternalError', 'An internal error has occurred.'],
  http503: [503, 'Unavailable', 'The server is overloaded and can\u2019t handle the request.'],
};
const QUERY_ERRORS: Record<'throttle' | 'http500' | 'http503', [number, string, string, string]> = {
  throttle: [400, 'Throttling', 'Rate exceeded', 'Sender'],
  http500: [500, 'InternalFailure', 'The request processing has failed because of an unknown error.', 'Receiver'],
  http503: [503, 'ServiceUnavailable', 'Service is unavailable.', 'Receiver'],
};
const JSON_ERRORS: Record<'throttle' | 'http500' | 'http503', [number, string, string]> = {
  throttle: [400, 'ThrottlingException', 'Rate exceeded'],
  http500: [500, 'InternalFailure', 'The request processing has failed because of an unknown error.'],
  http503: [503, 'ServiceUnavailable', 'Service is unavailable.'],
};

/** The error answer a service would give, in its protocol's format. Exported for tests of the proxy. */
export function errorAnswer(kind: 'throttle' | 'http500' | 'http503', r: Pick<Recognised, 'protocol' | 'service'>): Answer {
  const requestId = randomUUID();
  switch (r.protocol) {
    case 'ec2': {
      const [status, code, message] = EC2_ERRORS[kind];
      return {
        status,
        headers: { 'content-type': 'text/xml;charset=UTF-8' },
        body: `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`,
      };
    }
    case 'query': {
      const [status, code, message, type] = QUERY_ERRORS[kind];
      const ns = r.service === 'sns' ? ' xmlns="http://sns.amazonaws.com/doc/2010-03-31/"' : '';
      return {
        status,
        headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId },
        body: `<ErrorResponse${ns}><Error><Type>${type}</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
      };
    }
    case 'json': {
      const [status, code, message] = JSON_ERRORS[kind];
      return {
        status,
        headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': requestId, 'x-amzn-errortype': `${code}:` },
        body: JSON.stringify({ __type: code, message }),
      };
    }
    default:
      // Protocols whose error bodies we do not forge (CBOR, REST-XML): a bare 5xx, which every SDK retries.
      return { status: kind === 'http500' ? 500 : 503, headers: { 'x-amzn-requestid': requestId }, body: '' };
  }
}

// ---------------------------------------------------------------- EC2 fidelity

interface InstanceTimes {
  launchedAt?: number;
  stoppedAt?: number;
  terminated?: boolean;
}

/** `<item><instanceId>…</instanceId><currentState>…<name>x</name>…<previousState>…<name>y</name>` of state-change answers. */
function stateChanges(xml: string): Array<{ instanceId: string; previous?: string; current?: string }> {
  const out: Array<{ instanceId: string; previous?: string; current?: string }> = [];
  const re =
    /<instanceId>([^<]+)<\/instanceId>\s*<currentState>[\s\S]*?<name>([^<]*)<\/name>[\s\S]*?<\/currentState>\s*<previousState>[\s\S]*?<name>([^<]*)<\/name>/g;
  for (let m = re.exec(xml); m; m = re.exec(xml)) out.push({ instanceId: m[1], current: m[2], previous: m[3] });
  return out;
}

/** Instance ids of a RunInstances answer. */
function launchedIds(xml: string): string[] {
  return [...xml.matchAll(/<instanceId>([^<]+)<\/instanceId>/g)].map((m) => m[1]);
}

/** The top-level `<item>` spans of every `<instancesSet>` in a DescribeInstances answer. */
function instanceItems(xml: string): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  const tag = /<(\/?)(instancesSet|item)(\/?)>/g;
  let inSet = 0;
  let depth = 0;
  let start = -1;
  for (let m = tag.exec(xml); m; m = tag.exec(xml)) {
    const [whole, close, name, selfClose] = m;
    if (name === 'instancesSet') {
      if (selfClose) continue;
      inSet += close ? -1 : 1;
      depth = 0;
      continue;
    }
    if (!inSet || selfClose) continue;
    if (!close) {
      if (depth === 0) start = m.index;
      depth++;
    } else {
      depth--;
      if (depth === 0 && start >= 0) spans.push([start, m.index + whole.length]);
    }
  }
  return spans;
}

function gmt(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, '');
}

// ---------------------------------------------------------------- the proxy

/** Starts the proxy on a free loopback port. */
export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(opts.target);
  const clock = opts.clock ?? Date.now;
  const hangMs = opts.hangMs ?? 30_000;
  const [slowMin, slowMax] = opts.slowMs ?? [50, 250];
  let random = seededRandom(opts.seed ?? 1);
  let rules: readonly FaultRule[] = opts.rules ?? [];
  let scripted: Array<ScriptedFault & { left: number }> = [];
  let onForwarded = opts.onForwarded;
  const calls: ProxyCall[] = [];
  const transitions: Transition[] = [];
  const faults = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  let faultsBy: Record<string, number> = {};
  const times = new Map<string, InstanceTimes>();
  const sockets = new Set<Socket>();
  const holds = new Set<NodeJS.Timeout>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let seq = 0;

  const pick = (r: Recognised): { kind: FaultKind; phase: FaultPhase; delayMs?: number } | undefined => {
    const hit = (f: Omit<FaultRule, 'rate'>) =>
      matches(f.service, r.service) && matches(f.action, r.action) && matches(f.principal, r.principal);
    const s = scripted.find((f) => f.left > 0 && hit(f));
    if (s) {
      s.left--;
      scripted = scripted.filter((f) => f.left > 0);
      return { kind: s.kind, phase: s.phase ?? 'before', ...(s.delayMs !== undefined ? { delayMs: s.delayMs } : {}) };
    }
    for (const rule of rules) {
      if (!hit(rule)) continue;
      // One draw per matching rule, whatever the outcome, so a run is reproducible from its seed.
      if (random() < rule.rate)
        return { kind: rule.kind, phase: rule.phase ?? 'before', ...(rule.delayMs !== undefined ? { delayMs: rule.delayMs } : {}) };
    }
    return undefined;
  };

  const forward = (req: http.IncomingMessage, body: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const headers = { ...req.headers };
      delete headers['accept-encoding'];
      const out = http.request(
        {
          protocol: upstream.protocol,
          hostname: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers,
          agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
        },
      );
      out.on('error', reject);
      out.end(body);
    });

  const fidelityRefusal = (r: Recognised, ids: readonly string[]): Answer | undefined => {
    if (!opts.ec2Fidelity || r.service !== 'ec2' || !/^(StopInstances|StartInstances|RebootInstances)$/.test(r.action)) return undefined;
    const dead = ids.find((id) => times.get(id)?.terminated);
    if (!dead) return undefined;
    return {
      status: 400,
      headers: { 'content-type': 'text/xml;charset=UTF-8' },
      body: `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>IncorrectInstanceState</Code><Message>This instance '${dead}' is not in a state from which it can be ${r.action === 'StartInstances' ? 'started' : r.action === 'RebootInstances' ? 'rebooted' : 'stopped'}.</Message></Error></Errors><RequestID>${randomUUID()}</RequestID></Response>`,
    };
  };

  /** Records transitions of a forwarded EC2 call and rewrites describe answers. */
  const observeEc2 = (call: ProxyCall, body: Buffer): Buffer => {
    if (call.service !== 'ec2' || call.upstreamStatus !== 200) return body;
    const text = body.toString('utf8');
    const now = call.time;
    const at = (id: string) => {
      let t = times.get(id);
      if (!t) times.set(id, (t = {}));
      return t;
    };
    switch (call.action) {
      case 'RunInstances':
        for (const id of launchedIds(text)) {
          at(id).launchedAt = now;
          transitions.push({
            instanceId: id,
            to: 'running',
            time: now,
            ...(call.principal ? { principal: call.principal } : {}),
            seq: call.seq,
          });
        }
        return body;
      case 'StartInstances':
      case 'StopInstances':
      case 'TerminateInstances': {
        const changes = stateChanges(text);
        call.changes = changes;
        for (const c of changes) {
          const t = at(c.instanceId);
          const wasRunning = c.previous === 'running' || c.previous === 'pending';
          const wasStopped = c.previous === 'stopped' || c.previous === 'stopping';
          let to: string | undefined;
          if (call.action === 'StartInstances' && wasStopped) {
            t.launchedAt = now;
            to = 'running';
          } else if (call.action === 'StopInstances' && wasRunning) {
            t.stoppedAt = now;
            to = 'stopped';
          } else if (call.action === 'TerminateInstances' && c.previous !== 'terminated' && c.previous !== 'shutting-down') {
            if (wasRunning) t.stoppedAt = now;
            t.terminated = true;
            to = 'terminated';
          }
          if (to)
            transitions.push({
              instanceId: c.instanceId,
              from: c.previous,
              to,
              time: now,
              ...(call.principal ? { principal: call.principal } : {}),
              seq: call.seq,
            });
        }
        return body;
      }
      case 'DescribeInstances': {
        if (!opts.ec2Fidelity || times.size === 0) return body;
        let out = '';
        let last = 0;
        for (const [s, e] of instanceItems(text)) {
          let item = text.slice(s, e);
          const id = /<instanceId>([^<]+)<\/instanceId>/.exec(item)?.[1];
          const t = id ? times.get(id) : undefined;
          if (t?.launchedAt !== undefined) {
            item = item.replace(/<launchTime>[^<]*<\/launchTime>/, `<launchTime>${new Date(t.launchedAt).toISOString()}</launchTime>`);
          }
          if (t?.stoppedAt !== undefined) {
            item = item.replace(
              /(<reason>[^<(]*\()\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} (GMT|UTC)(\)[^<]*<\/reason>)/,
              `$1${gmt(t.stoppedAt)} GMT$3`,
            );
          }
          out += text.slice(last, s) + item;
          last = e;
        }
        return Buffer.from(out + text.slice(last), 'utf8');
      }
      default:
        return body;
    }
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => void handle(req, res, Buffer.concat(chunks)));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  const send = (res: http.ServerResponse, call: ProxyCall, a: Answer) => {
    call.status = a.status;
    if (res.destroyed) return;
    res.writeHead(a.status, { ...a.headers, 'content-length': Buffer.byteLength(a.body) });
    res.end(a.body);
  };
  const hold = (res: http.ServerResponse) => {
    const timer = setTimeout(() => {
      holds.delete(timer);
      res.socket?.destroy();
    }, hangMs);
    holds.add(timer);
    res.on('close', () => {
      clearTimeout(timer);
      holds.delete(timer);
    });
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> {
    const text = body.toString('utf8');
    const r = recognise(req.method ?? 'GET', req.url ?? '/', req.headers, text);
    const ids = instanceIdsOf(r.params);
    const tags = tagsOf(r.params);
    const event = eventOf(r.params);
    const call: ProxyCall = {
      seq: ++seq,
      service: r.service,
      action: r.action,
      ...(r.principal ? { principal: r.principal } : {}),
      instanceIds: ids,
      ...(tags ? { tags } : {}),
      ...(r.params ? { params: r.params } : {}),
      ...(event ? { event } : {}),
      time: clock(),
      wallTime: Date.now(),
      forwarded: false,
    };
    calls.push(call);
    const f = pick(r);
    if (f) {
      call.fault = f.kind;
      call.phase = f.phase;
      faults[f.kind]++;
      const key = `${r.service} ${r.action} ${f.kind} ${f.phase}`;
      faultsBy[key] = (faultsBy[key] ?? 0) + 1;
    }
    const inject = async (kind: FaultKind): Promise<void> => {
      switch (kind) {
        case 'timeout':
          return hold(res);
        case 'drop':
          call.status = undefined;
          req.socket.destroy();
          return;
        default:
          return send(res, call, errorAnswer(kind as 'throttle' | 'http500' | 'http503', r));
      }
    };
    try {
      const delay = f?.kind === 'slow' ? (f.delayMs ?? slowMin + random() * (slowMax - slowMin)) : 0;
      if (delay && f?.phase === 'before') await sleep(delay);
      if (f && f.kind !== 'slow' && f.phase === 'before') return void (await inject(f.kind));
      const refusal = fidelityRefusal(r, ids);
      if (refusal) return send(res, call, refusal);
      const up = await forward(req, body);
      call.forwarded = true;
      call.upstreamStatus = up.status;
      const answer = observeEc2(call, up.body);
      if (onForwarded) await onForwarded(call);
      if (f && f.kind !== 'slow') return void (await inject(f.kind));
      if (delay && f?.phase === 'after') await sleep(delay);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(up.headers)) {
        if (v === undefined || /^(content-length|transfer-encoding|connection|keep-alive)$/i.test(k)) continue;
        headers[k] = Array.isArray(v) ? v.join(', ') : v;
      }
      call.status = up.status;
      if (res.destroyed) return;
      res.writeHead(up.status, { ...headers, 'content-length': answer.length });
      res.end(answer);
    } catch (e) {
      if (!res.headersSent && !res.destroyed)
        send(res, call, { status: 502, headers: {}, body: `fault-proxy: upstream failed: ${(e as Error).message}` });
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const clearLog = () => {
    calls.length = 0;
    transitions.length = 0;
    for (const k of FAULT_KINDS) faults[k] = 0;
    faultsBy = {};
  };

  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    transitions,
    faults,
    faultsBy: () => ({ ...faultsBy }),
    setRules: (next) => (rules = next),
    script: (...next) => scripted.push(...next.map((f) => ({ ...f, left: f.count ?? 1 }))),
    setOnForwarded: (hook) => (onForwarded = hook),
    clearLog,
    reset() {
      clearLog();
      times.clear();
      scripted = [];
      random = seededRandom(opts.seed ?? 1);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of holds) clearTimeout(t);
        holds.clear();
        for (const s of sockets) s.destroy();
        agent.destroy();
        server.close(() => resolve());
      }),
  };
}
