/**
 * The user-data bootstrap of a self-managed instance: a small shell script that is
 * STABLE (it depends on the policy's identity only — id, region, topic, parameter
 * names — never on the policy document or the agent version, so editing either never
 * changes the user data and never replaces an instance). On first boot it:
 *
 *  1. writes `/etc/smvm/agent.json` (config) and `/etc/smvm/management-id` (from the
 *     management-id tag, read through IMDSv2 tags);
 *  2. arms a dependency-free shutdown guard (systemd timer + shell script) that powers
 *     the OS off at the lifetime hard limit (tag `smvm:hard-limit`, seconds since the
 *     first boot, plus `smvm:extend` `lifetime=<s>`) while the agent's heartbeat file
 *     is stale — so the VM is guarded even if Node or the agent never come up;
 *  3. installs Node from the distro (dnf, yum or apt-get) when it is missing; if that
 *     fails it says so and exits 0 (the guard and the watchdog still cover the VM);
 *  4. writes a tiny installer (node:crypto SigV4 + IMDSv2 role credentials) that reads
 *     the artifact pointer (SSM `{bucket,key,sha256}`), downloads the S3 object,
 *     verifies its sha256 and installs it as `/opt/smvm/agent.js`; the agent's unit runs
 *     it before every start, so a new agent version arrives at the next (re)start;
 *  5. installs and starts `smvm-agent.service` (Restart=always, WantedBy=multi-user).
 *
 * Tests run the very same text with paths redirected by environment variables that are
 * never set on an instance ({@link BOOTSTRAP_ROOT_ENV_VAR} and friends).
 *
 * This module imports nothing but the contract: the constructs import it.
 */
import { gzipSync } from 'node:zlib';
import {
  AGENT_CONFIG_FILE,
  AGENT_DIR,
  AGENT_HOME_ENV_VAR,
  AWS_ENDPOINT_URL_ENV_VAR,
  IMDS_ENDPOINT_ENV_VAR,
  MANAGEMENT_ID_FILE,
  SHUTDOWN_COMMAND_ENV_VAR,
} from './env';
import { EXTEND_TAG, HARD_LIMIT_TAG, MANAGEMENT_ID_TAG } from './tags';

/** Where the agent bundle and its installer live. */
export const AGENT_INSTALL_DIR = '/opt/smvm';
/** The installed agent bundle. */
export const AGENT_BUNDLE_FILE = 'agent.js';
/** Directory of the agent's state, the guard's first-boot file and the heartbeat file. */
export const AGENT_STATE_DIR = '/var/lib/smvm';
/** File (under the state dir) holding the epoch second until which the agent counts as alive. */
export const HEARTBEAT_FILE = 'heartbeat';
/** File (under the state dir) holding the epoch second of the first boot (for the guard). */
export const FIRST_BOOT_FILE = 'first-boot';
export const AGENT_UNIT = 'smvm-agent.service';
export const GUARD_UNIT = 'smvm-guard.service';
export const GUARD_TIMER = 'smvm-guard.timer';
/**
 * Node flags of the agent's unit: a 1 MB young generation keeps the resident set close
 * to an empty Node process; the agent allocates little per tick.
 */
export const AGENT_NODE_FLAGS = '--max-semi-space-size=1 --max-old-space-size=48';

/** Test only: prefix of every path the bootstrap writes (unset on instances). */
export const BOOTSTRAP_ROOT_ENV_VAR = 'SMVM_ROOT';
/** Test only: the systemctl to call (unset on instances: `systemctl`). */
export const BOOTSTRAP_SYSTEMCTL_ENV_VAR = 'SMVM_SYSTEMCTL';

/** The contents of `/etc/smvm/agent.json`. */
export interface AgentConfigDocument {
  readonly policyId: string;
  readonly region: string;
  readonly topicArn: string;
  readonly policyParameter: string;
  readonly artifactParameter: string;
  /** @default '/var/lib/smvm' */
  readonly stateDir?: string;
  /** @default '/run/utmp' */
  readonly utmpPath?: string;
  /** @default 'systemctl' */
  readonly systemctl?: string;
}

export interface BootstrapOptions {
  readonly policyId: string;
  readonly region: string;
  readonly topicArn: string;
  /** SSM parameter of the policy document (see `policyParameterName`). */
  readonly policyParameter: string;
  /** SSM parameter of the agent artifact pointer (see `agentArtifactParameterName`). */
  readonly artifactParameter: string;
}

export class BootstrapOptionError extends Error {
  constructor(field: string, value: string) {
    super(
      `bootstrap: '${field}' may hold only letters, digits and : / _ . @ + = , - (or be a single cdktf token), got: ${JSON.stringify(value)}. Pass the plain id, ARN or parameter name.`,
    );
    this.name = 'BootstrapOptionError';
  }
}

/** Plain values, or one unresolved cdktf token (Terraform substitutes it at apply). */
const SAFE = /^(?:[A-Za-z0-9:/_.@+=,-]{1,512}|\$\{TfToken\[[A-Za-z0-9_.]+\]\})$/;

/** Installer: SSM pointer → S3 object → sha256 check → agent.js (node:crypto SigV4, IMDSv2). */
function installer(): string {
  return String.raw`// smvm agent installer: reads the artifact pointer, fetches and verifies the agent.
"use strict";const c=require("crypto"),f=require("fs"),E=process.env,O=__dirname+"/agent.js",
C=JSON.parse(f.readFileSync((E.${AGENT_HOME_ENV_VAR}||"${AGENT_DIR}")+"/${AGENT_CONFIG_FILE}","utf8")),
I=E.${IMDS_ENDPOINT_ENV_VAR}||"http://169.254.169.254",X=E.${AWS_ENDPOINT_URL_ENV_VAR};
const q=(u,o,b)=>new Promise((y,n)=>{u=new URL(u);const r=require(u.protocol=="https:"?"https":"http").request(u,o,s=>{const d=[];
s.on("data",k=>d.push(k));s.on("end",()=>y({s:s.statusCode,b:Buffer.concat(d)}))});r.setTimeout(1e4,()=>r.destroy(new Error("timeout")));r.on("error",n);r.end(b)});
const H=(k,d)=>c.createHmac("sha256",k).update(d).digest(),S=d=>c.createHash("sha256").update(d).digest("hex"),
e=s=>encodeURIComponent(s).replace(/[!'()*]/g,x=>"%"+x.charCodeAt(0).toString(16).toUpperCase());
async function md(p,t){const r=await q(I+"/latest/meta-data/"+p,{headers:{"x-aws-ec2-metadata-token":t}});if(r.s!=200)throw Error("imds "+p+": "+r.s);return r.b+""}
async function aws(v,m,p,h,b,K){b=b||"";const u=new URL((X||"https://"+v+"."+C.region+".amazonaws.com").replace(/\/+$/,"")+p),
t=new Date().toISOString().replace(/[-:]|\.\d+/g,""),d=t.slice(0,8),ph=S(b),g=d+"/"+C.region+"/"+v+"/aws4_request";
h=Object.assign({host:u.host,"x-amz-date":t,"x-amz-content-sha256":ph},h);if(K.Token)h["x-amz-security-token"]=K.Token;
const n=Object.keys(h).sort(),z=n.join(";"),cr=[m,u.pathname,"",n.map(k=>k+":"+h[k]).join("\n"),"",z,ph].join("\n");
let k=H("AWS4"+K.SecretAccessKey,d);for(const x of[C.region,v,"aws4_request"])k=H(k,x);
h.authorization="AWS4-HMAC-SHA256 Credential="+K.AccessKeyId+"/"+g+", SignedHeaders="+z+", Signature="+H(k,"AWS4-HMAC-SHA256\n"+t+"\n"+g+"\n"+S(cr)).toString("hex");
const r=await q(u,{method:m,headers:h},b);if(r.s!=200)throw Error(v+" "+r.s+": "+(r.b+"").slice(0,300));return r.b}
async function main(){const t=(await q(I+"/latest/api/token",{method:"PUT",headers:{"x-aws-ec2-metadata-token-ttl-seconds":"300"}})).b+"",
R="iam/security-credentials/",K=JSON.parse(await md(R+(await md(R,t)).split("\n")[0].trim(),t)),
P=JSON.parse(JSON.parse(await aws("ssm","POST","/",{"content-type":"application/x-amz-json-1.1","x-amz-target":"AmazonSSM.GetParameter"},JSON.stringify({Name:C.artifactParameter}),K)).Parameter.Value);
try{if(S(f.readFileSync(O))==P.sha256)return console.log("smvm-install: agent "+P.sha256.slice(0,12)+" already installed")}catch{}
const a=await aws("s3","GET","/"+e(P.bucket)+"/"+P.key.split("/").map(e).join("/"),{},"",K);
if(S(a)!=P.sha256){console.error("smvm-install: sha256 of s3://"+P.bucket+"/"+P.key+" is "+S(a)+", the pointer says "+P.sha256+": not installed");process.exit(1)}
f.writeFileSync(O+".new",a);f.renameSync(O+".new",O);console.log("smvm-install: installed agent "+P.sha256.slice(0,12)+" ("+a.length+" bytes)")}
(async()=>{for(let i=1;;i++)try{return await main()}catch(x){console.error("smvm-install: attempt "+i+" failed: "+x.message);
if(i>=3)process.exit(1);await new Promise(r=>setTimeout(r,2e3*i))}})();
`;
}

/** Shutdown guard: no dependencies beyond sh, curl, date, sed. */
function guard(): string {
  return String.raw`#!/bin/sh
# smvm shutdown guard: powers the OS off once the lifetime hard limit (tag ${HARD_LIMIT_TAG}:
# seconds since the first boot, plus ${EXTEND_TAG} lifetime=<s>) is reached, unless the
# agent's heartbeat file says the agent is alive (it acts itself then).
V=$${BOOTSTRAP_ROOT_ENV_VAR}${AGENT_STATE_DIR} I=$${IMDS_ENDPOINT_ENV_VAR} n=$(date +%s)
[ -n "$I" ] || I=http://169.254.169.254
int() { case $1 in ''|*[!0-9]*) echo 0;; *) echo "$1";; esac; }
[ -s $V/${FIRST_BOOT_FILE} ] || { mkdir -p $V; echo $n >$V/${FIRST_BOOT_FILE}; }
[ $(int "$(cat $V/${HEARTBEAT_FILE} 2>/dev/null)") -gt $n ] && exit 0
T=$(curl -sf -m 3 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' $I/latest/api/token) || exit 0
g() { curl -sf -m 3 -H "X-aws-ec2-metadata-token: $T" $I/latest/meta-data/tags/instance/$1; }
l=$(int "$(g ${HARD_LIMIT_TAG})"); [ $l -gt 0 ] || exit 0
x=$(int "$(g ${EXTEND_TAG} | sed -n 's/.*lifetime=\([0-9]*\).*/\1/p')")
d=$(( $(int "$(cat $V/${FIRST_BOOT_FILE})") + l + x ))
[ $n -ge $d ] || exit 0
echo "smvm-guard: lifetime hard limit reached ($l s + $x s extension since the first boot), agent silent: shutting down"
logger -t smvm-guard "lifetime hard limit reached, agent silent: shutting down" 2>/dev/null
S=$${SHUTDOWN_COMMAND_ENV_VAR}; [ -n "$S" ] || S="systemctl poweroff"
exec $S
`;
}

/**
 * The bootstrap shell script for a policy. Its text depends only on `opts` (the
 * policy's identity), never on the policy document or the agent version.
 */
export function renderBootstrap(opts: BootstrapOptions): string {
  for (const [k, v] of Object.entries(opts)) if (typeof v !== 'string' || !SAFE.test(v)) throw new BootstrapOptionError(k, String(v));
  const config = JSON.stringify({
    policyId: opts.policyId,
    region: opts.region,
    topicArn: opts.topicArn,
    policyParameter: opts.policyParameter,
    artifactParameter: opts.artifactParameter,
    stateDir: '@V@',
  }).replace('"@V@"', '"$V"');
  return String.raw`#!/bin/sh
# smvm bootstrap (stable: the agent and the policy are fetched, never embedded).
R=$${BOOTSTRAP_ROOT_ENV_VAR} SC=$${BOOTSTRAP_SYSTEMCTL_ENV_VAR} I=$${IMDS_ENDPOINT_ENV_VAR}
[ -n "$SC" ] || SC=systemctl
[ -n "$I" ] || I=http://169.254.169.254
E=$R${AGENT_DIR} V=$R${AGENT_STATE_DIR} O=$R${AGENT_INSTALL_DIR} U=$R/etc/systemd/system
say() { echo "smvm-bootstrap: $*"; logger -t smvm-bootstrap "$*" 2>/dev/null; }
umask 022; mkdir -p $E $V $O $U || exit 0
[ -s $V/${FIRST_BOOT_FILE} ] || date +%s >$V/${FIRST_BOOT_FILE}
cat >$E/${AGENT_CONFIG_FILE} <<J
${config}
J
for i in 1 2 3 4 5; do T=$(curl -sf -m 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' $I/latest/api/token) && break; sleep $i; done
m=$(curl -sf -m 5 -H "X-aws-ec2-metadata-token: $T" $I/latest/meta-data/tags/instance/${MANAGEMENT_ID_TAG}) && echo "$m" >$E/${MANAGEMENT_ID_FILE} || say "no ${MANAGEMENT_ID_TAG} tag in instance metadata (enable instance metadata tags)"
cat >$O/guard.sh <<'G'
${guard()}G
cat >$U/${GUARD_UNIT} <<G
[Unit]
Description=smvm lifetime hard-limit guard
[Service]
Type=oneshot
ExecStart=/bin/sh $O/guard.sh
G
cat >$U/${GUARD_TIMER} <<G
[Unit]
Description=smvm lifetime hard-limit guard, every minute
[Timer]
OnBootSec=1min
OnUnitActiveSec=1min
AccuracySec=10s
[Install]
WantedBy=timers.target
G
$SC daemon-reload; $SC enable --now --no-block ${GUARD_TIMER} || say "could not enable ${GUARD_TIMER}"
N=$(command -v node)
if [ -z "$N" ]; then
  say "installing Node.js from the distribution"
  if command -v dnf >/dev/null; then dnf install -y -q nodejs
  elif command -v yum >/dev/null; then yum install -y -q nodejs
  elif command -v apt-get >/dev/null; then DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs
  fi
  N=$(command -v node)
fi
if [ -z "$N" ] || ! "$N" -e 'process.exit(process.versions.node.split(".")[0]<18?1:0)'; then
  say "ERROR: Node.js 18 or later is not available and could not be installed: the smvm agent is NOT running; the shutdown guard and the watchdog still cover this instance"
  exit 0
fi
cat >$O/install.js <<'N'
${installer()}N
${AGENT_HOME_ENV_VAR}=$E "$N" $O/install.js || say "agent download failed; the service retries at every start"
cat >$U/${AGENT_UNIT} <<A
[Unit]
Description=smvm self-management agent
Wants=network-online.target
After=network-online.target
[Service]
Environment=${AGENT_HOME_ENV_VAR}=$E
ExecStartPre=-$N $O/install.js
ExecStart=$N ${AGENT_NODE_FLAGS} $O/${AGENT_BUNDLE_FILE}
Restart=always
RestartSec=10
[Install]
WantedBy=multi-user.target
A
$SC daemon-reload; $SC enable --now --no-block ${AGENT_UNIT} || say "could not enable ${AGENT_UNIT}"
say "done"
`;
}

/** One part of a MIME multipart user data. */
export interface UserDataPart {
  /** e.g. `text/x-shellscript`, `text/cloud-config`. */
  readonly contentType: string;
  readonly content: string;
  readonly filename?: string;
}

/** The boundary of {@link renderUserData}'s multipart message. */
export const USER_DATA_BOUNDARY = '==smvm-user-data==';

/**
 * The EC2 user data: a gzip-compressed MIME multipart message (cloud-init accepts
 * both) with the bootstrap and, after it, any parts of the user's own. Byte-stable.
 */
export function renderUserData(opts: BootstrapOptions, extraParts: readonly UserDataPart[] = []): Buffer {
  const parts: UserDataPart[] = [
    { contentType: 'text/x-shellscript', content: renderBootstrap(opts), filename: 'smvm-bootstrap.sh' },
    ...extraParts,
  ];
  const lines = [`Content-Type: multipart/mixed; boundary="${USER_DATA_BOUNDARY}"`, 'MIME-Version: 1.0', ''];
  parts.forEach((p, i) => {
    if (p.content.includes(`--${USER_DATA_BOUNDARY}`)) throw new Error(`user data: part ${i + 1} contains the MIME boundary; remove it`);
    lines.push(
      `--${USER_DATA_BOUNDARY}`,
      `Content-Type: ${p.contentType}; charset="utf-8"`,
      'MIME-Version: 1.0',
      'Content-Transfer-Encoding: 8bit',
      `Content-Disposition: attachment; filename="${p.filename ?? `part-${i + 1}`}"`,
      '',
      p.content.replace(/\n$/, ''),
    );
  });
  lines.push(`--${USER_DATA_BOUNDARY}--`, '');
  return gzipSync(Buffer.from(lines.join('\n'), 'utf8'), { level: 9 });
}
