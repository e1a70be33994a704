import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProcSampler, type ProcSampler, UTMP_RECORD_SIZE } from '../../../../lambda-agent/adapters/agent/proc';

// ------------------------------------------------------------ fixture builders (real formats)

interface Cpu {
  user: number | bigint;
  system?: number;
  idle: number | bigint;
  iowait?: number;
}
function stat({ user, system = 0, idle, iowait = 0 }: Cpu): string {
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  return (
    `cpu  ${user} 0 ${system} ${idle} ${iowait} 0 0 0 0 0\n` +
    `cpu0 ${user} 0 ${system} ${idle} ${iowait} 0 0 0 0 0\n` +
    'intr 123456 0 0\nctxt 987654\nbtime 1764150000\nprocesses 4242\nprocs_running 1\nprocs_blocked 0\n'
  );
}

function netDev(ifaces: Record<string, [number | bigint, number | bigint]>): string {
  const head =
    'Inter-|   Receive                                                |  Transmit\n' +
    ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n';
  return (
    head +
    Object.entries(ifaces)
      .map(([name, [rx, tx]]) => `${name.padStart(6)}: ${String(rx).padStart(8)} 10 0 0 0 0 0 0 ${String(tx).padStart(8)} 12 0 0 0 0 0 0\n`)
      .join('')
  );
}

function diskstats(rows: [name: string, read: number | bigint, written: number | bigint][]): string {
  return rows.map(([name, r, w], i) => `   8       ${i} ${name} 100 0 ${r} 50 200 0 ${w} 80 0 120 130 0 0 0 0 0 0\n`).join('');
}

function meminfo(totalKb: number, availableKb?: number): string {
  return (
    `MemTotal:       ${totalKb} kB\nMemFree:          123456 kB\n` +
    (availableKb === undefined ? '' : `MemAvailable:   ${availableKb} kB\n`) +
    'Buffers:           12345 kB\nCached:           234567 kB\n'
  );
}

interface UtmpRecord {
  type: number;
  user?: string;
  line?: string;
  pid?: number;
}
/** glibc x86_64/aarch64 `struct utmp`: ut_type@0 (short), ut_pid@4, ut_line@8[32], ut_id@40[4], ut_user@44[32], ut_host@76[256]. */
function utmp(records: UtmpRecord[]): Buffer {
  return Buffer.concat(
    records.map(({ type, user = '', line = '', pid = 1000 }) => {
      const b = Buffer.alloc(UTMP_RECORD_SIZE);
      b.writeInt16LE(type, 0);
      b.writeInt32LE(pid, 4);
      b.write(line, 8, 32, 'latin1');
      b.write(user, 44, 32, 'latin1');
      b.write('203.0.113.7', 76, 256, 'latin1');
      return b;
    }),
  );
}

const USER_PROCESS = 7;
const LOGIN_PROCESS = 6;
const DEAD_PROCESS = 8;
const BOOT_TIME = 2;

// ------------------------------------------------------------ harness

let dir: string;
let proc: string;
let utmpPath: string;
let sampler: ProcSampler;

function put(name: string, content: string | Buffer): void {
  writeFileSync(name.startsWith('/') ? name : join(proc, name), content);
}

/** A machine with one NIC, lo, two whole disks with partitions and virtual devices. */
function writeBaseline(): void {
  put('stat', stat({ user: 1000, idle: 9000 }));
  put('net/dev', netDev({ lo: [5_000_000, 5_000_000], eth0: [1000, 2000] }));
  put(
    'diskstats',
    diskstats([
      ['loop0', 999, 999],
      ['sda', 100, 100],
      ['sda1', 90, 90],
      ['nvme0n1', 10, 10],
      ['nvme0n1p1', 5, 5],
      ['dm-0', 999, 999],
    ]),
  );
  put('meminfo', meminfo(4_000_000, 3_000_000));
  put('loadavg', '0.52 0.58 0.59 1/467 12345\n');
  put(
    utmpPath,
    utmp([
      { type: BOOT_TIME, user: 'reboot' },
      { type: USER_PROCESS, user: 'alice', line: 'pts/0' },
    ]),
  );
}

/** Moves every counter forward a little. */
function advance(): void {
  put('stat', stat({ user: 1500, idle: 9500 }));
  put('net/dev', netDev({ lo: [5_000_000, 5_000_000], eth0: [2000, 3000] }));
  put(
    'diskstats',
    diskstats([
      ['sda', 110, 110],
      ['sda1', 90, 90],
      ['nvme0n1', 10, 10],
    ]),
  );
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'smvm-proc-'));
  proc = join(dir, 'proc');
  mkdirSync(join(proc, 'net'), { recursive: true });
  utmpPath = join(dir, 'utmp');
  writeBaseline();
  sampler = createProcSampler({ procRoot: proc, utmpPath });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const T0 = 1_764_150_000_000;

// ------------------------------------------------------------ tests

describe('createProcSampler', () => {
  it('reports levels but no rates on the first sample', () => {
    expect(sampler.sample(T0)).toEqual({
      at: T0,
      cpuPercent: undefined,
      netBytesPerSec: undefined,
      netInBytesPerSec: undefined,
      netOutBytesPerSec: undefined,
      netOutBytesTotal: 2000,
      memUsedPercent: 25,
      diskBytesPerSec: undefined,
      load1: 0.52,
      loginSessions: 1,
    });
  });

  it('computes rates from busy and then idle intervals, leaving out lo, partitions and virtual disks', () => {
    sampler.sample(T0);
    // 10 s busy: 900 of 1000 jiffies busy; eth0 +50 kB in, +10 kB out; sda +200 sectors, nvme0n1 +20.
    put('stat', stat({ user: 1900, idle: 9100 }));
    put('net/dev', netDev({ lo: [9_000_000, 9_000_000], eth0: [51_000, 12_000] }));
    put(
      'diskstats',
      diskstats([
        ['loop0', 5000, 5000],
        ['sda', 200, 200],
        ['sda1', 190, 190],
        ['nvme0n1', 20, 20],
        ['nvme0n1p1', 15, 15],
        ['dm-0', 5000, 5000],
      ]),
    );
    const busy = sampler.sample(T0 + 10_000);
    expect(busy.cpuPercent).toBeCloseTo(90, 10);
    expect(busy.netInBytesPerSec).toBe(5000);
    expect(busy.netOutBytesPerSec).toBe(1000);
    expect(busy.netBytesPerSec).toBe(6000);
    expect(busy.netOutBytesTotal).toBe(12_000);
    expect(busy.diskBytesPerSec).toBe(((200 + 20) * 512) / 10);

    // 20 s idle: 10 of 2000 jiffies busy (iowait counts as idle); nothing moves.
    put('stat', stat({ user: 1905, system: 5, idle: 10_000, iowait: 1090 }));
    const idle = sampler.sample(T0 + 30_000);
    expect(idle.cpuPercent).toBeCloseTo(0.5, 10);
    expect(idle.netBytesPerSec).toBe(0);
    expect(idle.diskBytesPerSec).toBe(0);
  });

  it.each([
    ['stat', ['cpuPercent']],
    ['net/dev', ['netBytesPerSec', 'netInBytesPerSec', 'netOutBytesPerSec', 'netOutBytesTotal']],
    ['diskstats', ['diskBytesPerSec']],
    ['meminfo', ['memUsedPercent']],
    ['loadavg', ['load1']],
  ])('reports only the fields of a missing %s as unknown', (file, fields) => {
    sampler.sample(T0);
    advance();
    unlinkSync(join(proc, file));
    const s = sampler.sample(T0 + 10_000) as unknown as Record<string, unknown>;
    expect(Object.keys(s)).toHaveLength(10);
    for (const key of Object.keys(s)) {
      if (fields.includes(key)) expect(s[key]).toBeUndefined();
      else expect(s[key]).toEqual(expect.any(Number));
    }
  });

  it.each([
    ['stat', 'a non-numeric field', 'cpu  5000 ab 3 90000 0 0 0 0\n', 'cpuPercent'],
    ['stat', 'a short cpu line', 'cpu  5000 90000\n', 'cpuPercent'],
    ['stat', 'no cpu line', 'intr 1 2 3\n', 'cpuPercent'],
    ['stat', 'a negative value', 'cpu  5000 0 -1 90000 0 0 0 0\n', 'cpuPercent'],
    [
      'net/dev',
      'no header',
      netDev({ eth1: [1, 1], eth2: [1, 1], eth0: [90_000, 90_000] })
        .split('\n')
        .slice(2)
        .join('\n'),
      'netBytesPerSec',
    ],
    ['net/dev', 'a truncated line', netDev({ eth0: [90_000, 90_000] }).slice(0, -40), 'netBytesPerSec'],
    ['net/dev', 'a float in a counter', netDev({ eth0: [90_000, 200] }).replace(' 200 ', ' 2e5 '), 'netBytesPerSec'],
    ['net/dev', 'a line cut inside a counter', netDev({ eth0: [90_000, 9_500_000] }).replace(/9500000 .*\n$/, '95000'), 'netBytesPerSec'],
    [
      'diskstats',
      'a line cut inside a counter',
      diskstats([['sda', 5000, 5_000_000]]).replace(/ 5000000 .*\n$/, ' 50000'),
      'diskBytesPerSec',
    ],
    ['diskstats', 'a short line', '   8       0 sda 100 0 5000 50 200 0\n', 'diskBytesPerSec'],
    ['diskstats', 'a non-numeric field', diskstats([['sda', 5000, 5000]]).replace(' 5000 ', ' x '), 'diskBytesPerSec'],
    ['meminfo', 'no MemAvailable', meminfo(4_000_000), 'memUsedPercent'],
    ['meminfo', 'MemTotal 0', meminfo(0, 0), 'memUsedPercent'],
    ['meminfo', 'MemAvailable above MemTotal', meminfo(1000, 2000), 'memUsedPercent'],
    ['meminfo', 'a non-numeric MemTotal', 'MemTotal: lots kB\nMemAvailable: 5 kB\n', 'memUsedPercent'],
    ['loadavg', 'NaN', 'NaN NaN NaN\n', 'load1'],
    ['loadavg', 'an empty file', '', 'load1'],
    ['loadavg', '100 000 digits', '9'.repeat(100_000), 'load1'],
  ])('reports a %s with %s as unknown, never 0 and never throwing', (file, _what, content, field) => {
    sampler.sample(T0);
    put(file, content);
    const s = sampler.sample(T0 + 10_000) as unknown as Record<string, unknown>;
    expect(s[field]).toBeUndefined();
  });

  it('handles huge counters exactly, and reports those that wrap or reset as unknown for one interval', () => {
    const big = 18_446_744_073_709_551_000n; // near 2^64: a float would lose the delta
    put('net/dev', netDev({ eth0: [big, big] }));
    put('stat', stat({ user: big, idle: big }));
    sampler.sample(T0);
    put('net/dev', netDev({ eth0: [big + 615n, big + 1230n] }));
    put('stat', stat({ user: big + 300n, idle: big + 700n }));
    const s1 = sampler.sample(T0 + 1000);
    expect(s1.netInBytesPerSec).toBe(615);
    expect(s1.netOutBytesPerSec).toBe(1230);
    expect(s1.cpuPercent).toBeCloseTo(30, 10);

    // Wrap / reboot: counters restart from small values.
    put('net/dev', netDev({ eth0: [10, 20] }));
    put('stat', stat({ user: 5, idle: 50 }));
    const s2 = sampler.sample(T0 + 2000);
    expect(s2.netBytesPerSec).toBeUndefined();
    expect(s2.cpuPercent).toBeUndefined();
    expect(s2.netOutBytesTotal).toBe(20);

    // The next interval measures from the new baseline.
    put('net/dev', netDev({ eth0: [110, 20] }));
    put('stat', stat({ user: 10, idle: 95 }));
    const s3 = sampler.sample(T0 + 3000);
    expect(s3.netBytesPerSec).toBe(100);
    expect(s3.cpuPercent).toBeCloseTo(10, 10);
  });

  it('does not throw on 40-digit garbage and treats longer numbers as unknown', () => {
    put('net/dev', netDev({ eth0: ['9'.repeat(40) as unknown as number, '9'.repeat(41) as unknown as number] }));
    put('meminfo', `MemTotal: ${'9'.repeat(20)} kB\nMemAvailable: 1 kB\n`);
    expect(() => sampler.sample(T0)).not.toThrow();
    const s = sampler.sample(T0 + 1000);
    expect(s.netOutBytesTotal).toBeUndefined();
    expect(s.memUsedPercent).toBeCloseTo(100, 5);
  });

  it('reports no rates when the clock did not advance', () => {
    sampler.sample(T0);
    put('stat', stat({ user: 1900, idle: 9100 }));
    const s = sampler.sample(T0);
    expect(s.cpuPercent).toBeUndefined();
    expect(s.netBytesPerSec).toBeUndefined();
    expect(s.diskBytesPerSec).toBeUndefined();
  });

  it('reports no rates for the interval after a source failed, then resumes', () => {
    sampler.sample(T0);
    unlinkSync(join(proc, 'net/dev'));
    expect(sampler.sample(T0 + 10_000).netBytesPerSec).toBeUndefined();
    put('net/dev', netDev({ eth0: [2000, 2000] }));
    expect(sampler.sample(T0 + 20_000).netBytesPerSec).toBeUndefined();
    put('net/dev', netDev({ eth0: [3000, 2000] }));
    expect(sampler.sample(T0 + 30_000).netBytesPerSec).toBe(100);
  });

  it('counts an interface that appeared from its second sample, and ignores one that vanished', () => {
    sampler.sample(T0);
    put('net/dev', netDev({ eth0: [2000, 2000], docker0: [7000, 7000] }));
    expect(sampler.sample(T0 + 1000).netInBytesPerSec).toBe(1000);
    put('net/dev', netDev({ docker0: [7500, 7000] }));
    expect(sampler.sample(T0 + 2000).netInBytesPerSec).toBe(500);
  });

  it('honours a custom interface exclusion', () => {
    sampler = createProcSampler({ procRoot: proc, utmpPath, excludeInterfaces: /^(lo|veth.*|docker\d+)$/ });
    put('net/dev', netDev({ eth0: [0, 0], veth1a2b: [0, 0], docker0: [0, 0] }));
    sampler.sample(T0);
    put('net/dev', netDev({ eth0: [10, 0], veth1a2b: [1000, 1000], docker0: [1000, 1000] }));
    expect(sampler.sample(T0 + 1000).netBytesPerSec).toBe(10);
  });

  it('counts USER_PROCESS records with a user in utmp, ignoring other types and a truncated tail', () => {
    const records = utmp([
      { type: BOOT_TIME, user: 'reboot' },
      { type: LOGIN_PROCESS, user: 'LOGIN', line: 'tty1' },
      { type: USER_PROCESS, user: 'alice', line: 'pts/0' },
      { type: USER_PROCESS, user: 'bob', line: 'pts/1' },
      { type: DEAD_PROCESS, line: 'pts/2' },
      { type: USER_PROCESS, user: '', line: 'pts/3' },
      { type: USER_PROCESS, user: 'carol', line: 'tty2' },
    ]);
    put(utmpPath, Buffer.concat([records, utmp([{ type: USER_PROCESS, user: 'partial' }]).subarray(0, 100)]));
    expect(sampler.sample(T0).loginSessions).toBe(3);
  });

  it('reports zero sessions for an empty utmp and unknown for a missing one', () => {
    put(utmpPath, Buffer.alloc(0));
    expect(sampler.sample(T0).loginSessions).toBe(0);
    unlinkSync(utmpPath);
    expect(sampler.sample(T0 + 1000).loginSessions).toBeUndefined();
  });

  it('treats a whole proc root that does not exist as all unknown', () => {
    const s = createProcSampler({ procRoot: join(dir, 'nope'), utmpPath: join(dir, 'nope', 'utmp') });
    s.sample(T0);
    expect(s.sample(T0 + 1000)).toEqual({ at: T0 + 1000 });
    expect(Object.values(s.sample(T0 + 2000)).filter((v) => v !== undefined)).toEqual([T0 + 2000]);
  });

  it('reads the real /proc of this machine without throwing', () => {
    const real = createProcSampler();
    real.sample(Date.now() - 1000);
    const s = real.sample(Date.now());
    expect(s.memUsedPercent).toBeGreaterThan(0);
    expect(s.memUsedPercent).toBeLessThanOrEqual(100);
    expect(s.cpuPercent === undefined || (s.cpuPercent >= 0 && s.cpuPercent <= 100)).toBe(true);
    expect(s.load1).toBeGreaterThanOrEqual(0);
  });
});
