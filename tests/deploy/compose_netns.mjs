// The Compose topology run for real, without a container engine: deploy/compose.yaml's `cpu` profile,
// each service's command started from the build (not an image) in a network namespace of its own with
// its own address on a bridge, the way Docker runs one container per replica on a project network.
//
//   node compose_netns.mjs REPO_ROOT TANDEM_BINARY WORKDIR [PREFIX]
//
// Run it as root through netns_run.sh (skips when root or `ip netns` is missing, and cleans up whatever a
// killed run left behind). What stands in for Docker and Compose:
// - one netns per replica (`PREFIX-SERVICE-N`), a veth into the bridge PREFIXbr on 10.213.X.0/24 (X the
//   first free of a few, from the pid); the host side of the bridge is 10.213.X.1.
// - Compose's DNS: /etc/netns/NS/hosts (bind-mounted over /etc/hosts by `ip netns exec`) names every
//   running replica of every service (`decode`, and the container name `tandem-decode-2`); host.conf
//   says `multi on`, so glibc answers a name with every line, as Docker's DNS answers with every
//   replica. A replica is listed from its start until its process exits. The files are rewritten in
//   place (same inode: the bind mounts pin it) whenever one comes or goes; glibc re-reads them per lookup.
// - volumes: the named volumes become shared dirs under WORKDIR/volumes, and their container paths in
//   argv, in the one-shot shell scripts and in the health checks are rewritten to them; `tandem` on the
//   containers' PATH is the build (WORKDIR/bin/tandem), and a leading `tandem` in argv is replaced by it.
//   Interpolation as Compose's (${VAR:-default}), from this process's environment: TANDEM_THREADS and
//   TANDEM_KV_CACHE_MB default to 1 and 32 here (2 cores), TANDEM_GRPC_PORT/TANDEM_HTTP_PORT to 0.
// - depends_on (service_started / service_healthy / service_completed_successfully), the healthcheck
//   `test` run inside the replica's namespace every HEALTH_INTERVAL_S (0.5 s, Compose's start_interval is
//   2 s) until it first passes; `restart: unless-stopped`: a daemon that dies is started again after
//   Docker's first back-off (100 ms) with the same command in the same namespace and address.
// - published ports: a TCP forwarder on 127.0.0.1 (what docker-proxy does for loopback), host port 0 is
//   an ephemeral one; the host also reaches the router directly at its bridge address.
// - `--scale decode=N`: replicas added as decode-2, decode-3; scaling down stops the highest numbered
//   ones with the stop_signal (SIGTERM), SIGKILL after stop_grace_period.
//
// The scenario: up with decode=1, requests answered; decode scaled to 3 until requests land on all three;
// back to 1 under a steady stream of requests (a failure is allowed only for a request the removed
// replica's log names); the last decode worker SIGKILLed, restarted per its policy, requests failing
// only until it rejoins (within 15 s of the kill). Every process logs to WORKDIR/<service>-<n>.log.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import YAML from "yaml";

const [repoArg, tandemArg, workArg, prefixArg] = process.argv.slice(2);
if (!repoArg || !tandemArg || !workArg) {
  console.error("usage: node compose_netns.mjs REPO_ROOT TANDEM_BINARY WORKDIR [PREFIX]");
  process.exit(2);
}
const repo = path.resolve(repoArg);
const tandemBin = path.resolve(tandemArg);
const work = path.resolve(workArg);
const prefix = prefixArg || `td${process.pid}`;
const started = Date.now();
const HEALTH_INTERVAL_S = Number(process.env.HEALTH_INTERVAL_S || 0.5);
const BUDGET_S = Number(process.env.COMPOSE_NETNS_BUDGET_S || 120);
const now = () => Date.now();
const secs = (t) => ((t - started) / 1000).toFixed(1);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.log(`[${secs(now())}s]`, ...a);

// ---------------------------------------------------------------- ip(8)
function ip(...args) {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${(r.stderr || r.error?.message || "").trim()}`);
  return r.stdout;
}
const ipQuiet = (...args) => spawnSync("ip", args, { encoding: "utf8" });

// ---------------------------------------------------------------- Compose file
// Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}, $VAR, $$.
function interpolate(value, env) {
  if (typeof value === "string") {
    return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
      (all, name, op, arg, bare) => {
        if (all === "$$") return "$";
        if (bare) return env[bare] ?? "";
        const v = env[name];
        const unset = op?.startsWith(":") ? !v : v === undefined;
        if (!op) return v ?? "";
        if (op.endsWith("-")) return unset ? arg : v;
        if (op.endsWith("+")) return unset ? "" : arg;
        if (unset) throw new Error(`\${${name}} is required: ${arg}`);
        return v;
      });
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)]));
  return value;
}

function durationS(v, dflt) {
  if (v === undefined || v === null) return dflt;
  let total = 0;
  for (const m of String(v).matchAll(/(\d+(?:\.\d+)?)(ms|us|h|m|s)/g)) {
    total += Number(m[1]) * { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6 }[m[2]];
  }
  return total;
}

function loadCompose(profile) {
  const file = path.join(repo, "deploy", "compose.yaml");
  const doc = YAML.parseDocument(fs.readFileSync(file, "utf8"), { merge: true });
  if (doc.errors.length) throw new Error(`compose.yaml: ${doc.errors[0].message}`);
  const env = { ...process.env };
  env.TANDEM_THREADS ??= "1";
  env.TANDEM_KV_CACHE_MB ??= "32";
  env.TANDEM_GRPC_PORT ??= "0";
  env.TANDEM_HTTP_PORT ??= "0";
  const compose = interpolate(doc.toJS({ maxAliasCount: -1 }), env);
  const project = compose.name || "deploy";
  const services = new Map();
  for (const [name, s] of Object.entries(compose.services)) {
    if (s.profiles && !s.profiles.includes(profile)) continue;
    const volumes = (s.volumes ?? []).map((v) => {
      if (typeof v !== "string") return { source: v.source, target: v.target, type: v.type };
      const [source, target] = v.split(":");
      return { source, target, type: /^[./~]/.test(source) ? "bind" : "volume" };
    });
    // The image's entrypoint is ["tandem"] (deploy/Dockerfile).
    const argv = [...(s.entrypoint ?? ["tandem"]), ...(s.command ?? [])];
    const test = s.healthcheck?.test;
    services.set(name, {
      name, argv, volumes,
      restart: s.restart ?? "no",
      stopSignal: s.stop_signal ?? "SIGTERM",
      stopGraceS: durationS(s.stop_grace_period, 10),
      health: test && test[0] !== "NONE" ? {
        argv: test[0] === "CMD" ? test.slice(1) : ["/bin/sh", "-c", Array.isArray(test) ? test[1] : test],
        timeoutS: durationS(s.healthcheck.timeout, 30),
      } : null,
      dependsOn: Array.isArray(s.depends_on) ? Object.fromEntries(s.depends_on.map((d) => [d, { condition: "service_started" }]))
                                              : (s.depends_on ?? {}),
      ports: (s.ports ?? []).map((p) => {
        const m = String(p).match(/^(?:(\d+):)?(\d+)$/);
        if (!m) throw new Error(`${name}: port ${p}: only HOST:CONTAINER is handled here`);
        return { host: Number(m[1] ?? 0), container: Number(m[2]) };
      }),
    });
  }
  return { project, services };
}

// ---------------------------------------------------------------- the "engine"
class Engine {
  constructor(project, services) {
    this.project = project;
    this.services = services;
    this.replicas = new Map([...services.keys()].map((k) => [k, []]));  // service -> [replica]
    this.hostIndex = 10;
    this.vethIndex = 0;
    this.proxies = [];
    this.closing = false;
    this.events = [];  // {t, what}
  }

  setUpNetwork() {
    const routes = ip("-4", "route", "show") + ip("-4", "addr", "show");
    let x = 20 + (process.pid % 200);
    for (let i = 0; i < 40 && routes.includes(`10.213.${x}.`); ++i) x = 20 + ((x - 19) % 200);
    if (routes.includes(`10.213.${x}.`)) throw new Error("no free 10.213.X.0/24 subnet");
    this.subnet = `10.213.${x}`;
    this.gateway = `${this.subnet}.1`;
    this.bridge = `${prefix}br`;
    ip("link", "add", this.bridge, "type", "bridge");
    ip("addr", "add", `${this.gateway}/24`, "dev", this.bridge);
    ip("link", "set", this.bridge, "up");
    fs.mkdirSync(path.join(work, "bin"), { recursive: true });
    fs.rmSync(path.join(work, "bin", "tandem"), { force: true });
    fs.symlinkSync(tandemBin, path.join(work, "bin", "tandem"));
    fs.rmSync(path.join(work, "volumes"), { recursive: true, force: true });
    log(`network ${this.subnet}.0/24 on bridge ${this.bridge} (host side ${this.gateway})`);
  }

  // Container paths of a service's volumes -> host dirs, longest target first.
  mountsOf(svc) {
    return svc.volumes.map((v) => {
      const host = v.type === "volume" ? path.join(work, "volumes", v.source) : path.resolve(repo, "deploy", v.source);
      fs.mkdirSync(host, { recursive: true });
      return { target: v.target.replace(/\/$/, ""), host };
    }).sort((a, b) => b.target.length - a.target.length);
  }
  rewrite(svc, s) {
    for (const { target, host } of this.mountsOf(svc)) {
      const re = new RegExp(`(^|[\\s"'=:,;(])${target.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?=/|$|[\\s"':,;)])`, "gm");
      s = s.replace(re, (_, pre) => pre + host);
    }
    return s;
  }
  commandOf(svc, argv) {
    const out = argv.map((a) => this.rewrite(svc, String(a)));
    if (out[0] === "tandem") out[0] = tandemBin;
    return out;
  }

  hostsText() {
    const lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"];
    for (const [name, list] of this.replicas) {
      for (const r of list) if (r.proc) lines.push(`${r.ip}\t${name} ${r.container}`);
    }
    return lines.join("\n") + "\n";
  }
  // Rewritten in place (truncate + write): `ip netns exec` bind-mounted this inode over /etc/hosts.
  publishDns() {
    const text = this.hostsText();
    for (const list of this.replicas.values()) {
      for (const r of list) fs.writeFileSync(path.join("/etc/netns", r.ns, "hosts"), text);
    }
  }

  createReplica(name) {
    const svc = this.services.get(name);
    const n = this.replicas.get(name).length + 1;
    const r = {
      svc, name, n, container: `${this.project}-${name}-${n}`, ns: `${prefix}-${name}-${n}`,
      ip: `${this.subnet}.${this.hostIndex++}`, veth: `${prefix}v${this.vethIndex++}`,
      dir: path.join(work, `${name}-${n}`), log: path.join(work, `${name}-${n}.log`),
      proc: null, starts: 0, exits: [], healthy: false, stopping: false, removed: false,
    };
    fs.mkdirSync(r.dir, { recursive: true });
    fs.rmSync(r.log, { force: true });
    const etc = path.join("/etc/netns", r.ns);
    fs.mkdirSync(etc, { recursive: true });
    fs.writeFileSync(path.join(etc, "hosts"), this.hostsText());
    fs.writeFileSync(path.join(etc, "host.conf"), "multi on\n");
    // No DNS server answers inside: a name that is not in hosts fails at once (Docker's DNS: NXDOMAIN).
    fs.writeFileSync(path.join(etc, "resolv.conf"), "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
    ip("netns", "add", r.ns);
    ip("link", "add", r.veth, "type", "veth", "peer", "name", "eth0", "netns", r.ns);
    ip("-n", r.ns, "link", "set", "lo", "up");
    ip("-n", r.ns, "addr", "add", `${r.ip}/24`, "dev", "eth0");
    ip("-n", r.ns, "link", "set", "eth0", "up");
    ip("-n", r.ns, "route", "add", "default", "via", this.gateway);
    ip("link", "set", r.veth, "master", this.bridge);
    ip("link", "set", r.veth, "up");
    this.replicas.get(name).push(r);
    return r;
  }

  env(r) {
    return {
      PATH: `${path.join(work, "bin")}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
      HOME: r.dir, HOSTNAME: r.container, LANG: "C.UTF-8",
    };
  }

  start(r) {
    const argv = this.commandOf(r.svc, r.svc.argv);
    const fd = fs.openSync(r.log, "a");
    fs.writeSync(fd, `--- [${secs(now())}s] start #${r.starts + 1} in ${r.ns} (${r.ip}): ${argv.join(" ")}\n`);
    const proc = spawn("ip", ["netns", "exec", r.ns, ...argv], { stdio: ["ignore", fd, fd], env: this.env(r), cwd: r.dir });
    fs.closeSync(fd);
    r.proc = proc;
    r.starts += 1;
    r.healthy = false;
    r.startedAt = now();
    this.publishDns();
    r.exited = new Promise((resolve) => {
      proc.on("exit", (code, signal) => {
        const e = { t: now(), code, signal };
        r.exits.push(e);
        r.proc = null;
        r.healthy = false;
        if (!this.closing) this.publishDns();
        this.events.push({ t: e.t, what: `${r.container} exited (${signal ?? code})` });
        resolve(e);
        const policy = r.svc.restart;
        const restart = !r.stopping && !this.closing &&
          (policy === "always" || policy === "unless-stopped" || (policy.startsWith("on-failure") && code !== 0));
        if (restart) {
          setTimeout(() => {
            if (this.closing || r.stopping) return;
            this.events.push({ t: now(), what: `${r.container} restarted (restart: ${policy})` });
            log(`${r.container} exited (${signal ?? code}); restart: ${policy} starts it again`);
            this.start(r);
            this.watchHealth(r);
          }, 100);
        }
      });
    });
    this.watchHealth(r);
    return r;
  }

  // Until the first pass (Compose's start_period + start_interval), then `healthy`.
  watchHealth(r) {
    if (r.healthWatch === r.starts) return;
    r.healthWatch = r.starts;
    const attempt = r.starts;
    const h = r.svc.health;
    r.becameHealthy = (async () => {
      if (!h) { r.healthy = true; return true; }
      const argv = this.commandOf(r.svc, h.argv);
      while (r.proc && r.starts === attempt && !this.closing) {
        const res = await run("ip", ["netns", "exec", r.ns, ...argv], { env: this.env(r), cwd: r.dir, timeoutS: h.timeoutS });
        if (res.status === 0 && r.starts === attempt && r.proc) {
          r.healthy = true;
          r.healthyAt = now();
          return true;
        }
        await sleep(HEALTH_INTERVAL_S * 1000);
      }
      return false;
    })();
  }

  async waitCondition(dep, condition, deadline) {
    const list = () => this.replicas.get(dep);
    for (;;) {
      if (now() > deadline) throw new Error(`timed out waiting for ${dep} (${condition})`);
      const reps = list();
      if (reps.length) {
        if (condition === "service_started" && reps.every((r) => r.starts > 0)) return;
        if (condition === "service_healthy" && reps.every((r) => r.healthy)) return;
        if (condition === "service_completed_successfully" && reps.every((r) => r.exits.length)) {
          const bad = reps.find((r) => r.exits.at(-1).code !== 0);
          if (bad) throw new Error(`${bad.container} exited ${bad.exits.at(-1).code}: depends_on ${condition} fails`);
          return;
        }
        if (condition === "service_healthy" && reps.some((r) => r.exits.length && !r.proc && r.svc.restart === "no")) {
          throw new Error(`${dep} exited before it was healthy`);
        }
      }
      await sleep(100);
    }
  }

  // `docker compose up -d --scale`: every service to its count, each replica once its depends_on hold.
  async up(scale, deadline) {
    const names = [...this.services.keys()];
    await Promise.all(names.map(async (name) => {
      const svc = this.services.get(name);
      const want = scale[name] ?? 1;
      const have = this.replicas.get(name).length;
      if (have >= want) return;
      for (const [dep, d] of Object.entries(svc.dependsOn)) {
        if (!this.services.has(dep)) throw new Error(`${name}: depends_on ${dep}, not in the profile`);
        await this.waitCondition(dep, d.condition ?? "service_started", deadline);
      }
      for (let i = have; i < want; ++i) {
        const r = this.createReplica(name);
        this.start(r);
        log(`started ${r.container} at ${r.ip}`);
        if (svc.ports.length && i === 0) this.publish(r);
      }
    }));
  }

  async scale(name, count, deadline) {
    const list = this.replicas.get(name).filter((r) => !r.removed);
    if (count > list.length) {
      const svc = this.services.get(name);
      for (const [dep, d] of Object.entries(svc.dependsOn)) await this.waitCondition(dep, d.condition, deadline);
      const added = [];
      for (let i = list.length; i < count; ++i) {
        // Numbering continues after removed replicas, as Compose's does.
        const r = this.createReplica(name);
        this.start(r);
        added.push(r);
        log(`scale ${name}: started ${r.container} at ${r.ip}`);
      }
      return { added, removed: [] };
    }
    const removed = list.slice(count).reverse();
    await Promise.all(removed.map((r) => this.stop(r)));
    return { added: [], removed };
  }

  async stop(r, graceS = r.svc.stopGraceS) {
    r.stopping = true;
    r.removed = true;
    if (!r.proc) return;
    const exited = r.exited;
    r.proc.kill(r.svc.stopSignal);
    this.events.push({ t: now(), what: `${r.container} ${r.svc.stopSignal}` });
    const timer = setTimeout(() => r.proc?.kill("SIGKILL"), graceS * 1000);
    const e = await exited;
    clearTimeout(timer);
    log(`stopped ${r.container}: exit ${e.signal ?? e.code} after ${((e.t - this.events.findLast((x) => x.what === `${r.container} ${r.svc.stopSignal}`).t) / 1000).toFixed(1)}s`);
  }

  kill(r, signal = "SIGKILL") {
    this.events.push({ t: now(), what: `${r.container} ${signal}` });
    r.proc.kill(signal);
  }

  // docker-proxy's job: HOST:PORT on loopback forwarded to the replica's address.
  publish(r) {
    for (const p of r.svc.ports) {
      const server = net.createServer((c) => {
        const u = net.connect(p.container, r.ip);
        c.pipe(u); u.pipe(c);
        c.on("error", () => u.destroy()); u.on("error", () => c.destroy());
      });
      server.on("error", (e) => { throw new Error(`publishing ${r.name}'s port ${p.container} on 127.0.0.1:${p.host}: ${e.message}`); });
      server.listen(p.host, "127.0.0.1");
      this.proxies.push({ server, service: r.name, container: p.container, ready: new Promise((res) => server.on("listening", res)) });
    }
  }
  async publishedPort(service, containerPort) {
    const p = this.proxies.find((x) => x.service === service && x.container === containerPort);
    if (!p) throw new Error(`${service}: port ${containerPort} is not published`);
    await p.ready;
    return p.server.address().port;
  }

  // `compose down`: daemons stopped (SIGTERM, then SIGKILL), then the network taken apart.
  async down() {
    this.closing = true;
    for (const p of this.proxies) p.server.close();
    const all = [...this.replicas.values()].flat();
    for (const r of all) { r.stopping = true; r.proc?.kill("SIGTERM"); }
    const deadline = now() + 8000;
    while (all.some((r) => r.proc) && now() < deadline) await sleep(100);
    for (const r of all) r.proc?.kill("SIGKILL");
    while (all.some((r) => r.proc) && now() < deadline + 2000) await sleep(50);
    this.teardownNetwork();
  }
  teardownNetwork() {
    for (const r of [...this.replicas.values()].flat()) {
      // Anything still inside (a health check, a child) goes too.
      const pids = ipQuiet("netns", "pids", r.ns).stdout?.split(/\s+/).filter(Boolean) ?? [];
      for (const pid of pids) { try { process.kill(Number(pid), "SIGKILL"); } catch {} }
      ipQuiet("link", "del", r.veth);
      ipQuiet("netns", "del", r.ns);
      fs.rmSync(path.join("/etc/netns", r.ns), { recursive: true, force: true });
    }
    if (this.bridge) ipQuiet("link", "del", this.bridge);
  }
}

// ---------------------------------------------------------------- client
let httpBase = "";
let seq = 0;
async function complete(tag, maxTokens = 8) {
  const id = `${prefix}-${tag}-${++seq}`;
  const t0 = now();
  const prompt = `request ${seq} of the compose test, phase ${tag}`;
  try {
    const res = await fetch(`${httpBase}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, request_id: id }),
      signal: AbortSignal.timeout(30000),
    });
    const text = await res.text();
    if (res.status !== 200) return { ok: false, id, t0, t1: now(), error: `HTTP ${res.status}: ${text.slice(0, 300)}` };
    const body = JSON.parse(text);
    const problems = [];
    if (body.usage?.completion_tokens !== maxTokens) problems.push(`completion_tokens ${body.usage?.completion_tokens} != ${maxTokens}`);
    if (body.choices?.[0]?.finish_reason !== "length") problems.push(`finish_reason ${body.choices?.[0]?.finish_reason}`);
    if (!body.tandem?.decode_worker || !body.tandem?.prefill_worker) problems.push("no tandem.decode_worker/prefill_worker");
    if (problems.length) return { ok: false, id, t0, t1: now(), error: `bad response: ${problems.join("; ")}: ${text.slice(0, 300)}` };
    return { ok: true, id, t0, t1: now(), decode: body.tandem.decode_worker, prefill: body.tandem.prefill_worker, rid: body.tandem.request_id };
  } catch (e) {
    return { ok: false, id, t0, t1: now(), error: `${e.name}: ${e.message}${e.cause ? ` (${e.cause.message ?? e.cause})` : ""}` };
  }
}

// `concurrency` clients, each sending the next request when its last one ends, until stop().
function stream(tag, concurrency, maxTokens) {
  const results = [];
  let stopped = false;
  const loops = Array.from({ length: concurrency }, async () => {
    while (!stopped) {
      const r = await complete(tag, maxTokens);
      results.push(r);
      if (!r.ok) await sleep(100);
    }
  });
  return { results, stop: async () => { stopped = true; await Promise.all(loops); return results; } };
}

function run(cmd, args, { env, cwd, timeoutS = 60 } = {}) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: env ?? process.env, cwd });
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutS * 1000);
    let stdout = "", stderr = "";
    p.stdout.on("data", (d) => { stdout += d; });
    p.stderr.on("data", (d) => { stderr += d; });
    p.on("error", (e) => resolve({ status: -1, stdout, stderr: e.message }));
    p.on("exit", (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
  });
}

// ---------------------------------------------------------------- the scenario
const failures = [];
function check(cond, message) {
  if (!cond) failures.push(message);
  return cond;
}
const hostOf = (addr) => String(addr).replace(/:\d+$/, "");
// The decode worker the router placed a request on, from the router's log (HTTP requests carry our id as
// the client id; the router names its own id and the workers it picked): null when it never was placed.
function placedOn(engine, id) {
  const text = engine.replicas.get("router").map((r) => (fs.existsSync(r.log) ? fs.readFileSync(r.log, "utf8") : "")).join("\n");
  const rid = text.match(new RegExp(`req=(\\S+) .*\\(client id '${id}'\\)`))?.[1];
  if (!rid) return null;
  const m = text.match(new RegExp(`req=${rid} .*; prefill \\S+, decode (\\S+)`));
  return m ? hostOf(m[1]) : null;
}

async function main() {
  fs.mkdirSync(work, { recursive: true });
  const { project, services } = loadCompose("cpu");
  log(`compose.yaml, profile cpu: ${[...services.keys()].join(", ")} (project ${project})`);
  for (const name of ["router", "prefill", "decode", "model", "cluster-secret"]) {
    if (!services.has(name)) throw new Error(`compose.yaml's cpu profile has no ${name} service`);
  }
  const engine = new Engine(project, services);
  const summary = { requests: 0, failed: 0 };
  let ended = false;
  const abort = async (why) => {
    if (ended) return;
    ended = true;
    console.error(`\nFAILED: ${why}`);
    await engine.down().catch((e) => console.error(`cleanup: ${e.message}`));
    process.exit(1);
  };
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => abort(`interrupted by ${sig}`));
  const budget = setTimeout(() => { tails(engine); abort(`over the time budget of ${BUDGET_S}s`); }, BUDGET_S * 1000);

  try {
    engine.setUpNetwork();
    // ---- up, decode=1
    await engine.up({ decode: 1 }, now() + 60000);
    const router = engine.replicas.get("router")[0];
    const httpPort = await engine.publishedPort("router", 8080);
    const grpcPort = await engine.publishedPort("router", 8000);
    httpBase = `http://127.0.0.1:${httpPort}`;
    if (!await Promise.race([router.becameHealthy, sleep(60000).then(() => false)])) throw new Error("the router never became healthy");
    log(`router healthy; published: http 127.0.0.1:${httpPort}, grpc 127.0.0.1:${grpcPort} (also ${router.ip}:8080 on the bridge)`);
    const decodes = () => engine.replicas.get("decode");
    const d1 = decodes()[0];

    // ---- requests answered, through both published ports and the bridge address
    const first = [];
    for (let i = 0; i < 4; ++i) first.push(await complete("up"));
    first.push(...await Promise.all([complete("up"), complete("up"), complete("up")]));
    for (const r of first) check(r.ok, `up: ${r.id}: ${r.error}`);
    for (const r of first.filter((x) => x.ok)) check(hostOf(r.decode) === d1.ip, `up: ${r.id} decoded on ${r.decode}, not ${d1.ip}`);
    const direct = await fetch(`http://${router.ip}:8080/v1/models`).then((r) => r.status).catch((e) => e.message);
    check(direct === 200, `GET http://${router.ip}:8080/v1/models from the host: ${direct}`);
    // Not spawnSync: the forwarder of the published port runs on this event loop.
    const gen = await run(tandemBin, ["generate", "--router", `127.0.0.1:${grpcPort}`, "--prompt", "hello", "--max-tokens", "4",
                                      "--ignore-eos", "--timeout-s", "30"]);
    check(gen.status === 0, `tandem generate through the published gRPC port: exit ${gen.status}: ${gen.stderr}`);
    summary.requests += first.length + 1;
    log(`up: ${first.filter((r) => r.ok).length}/${first.length} HTTP requests ok on ${d1.container}, gRPC generate ${gen.status === 0 ? "ok" : "FAILED"}`);
    if (failures.length) throw new Error("the cluster does not answer");

    // ---- decode 1 -> 3: requests reach every replica
    const tScaleUp = now();
    const { added } = await engine.scale("decode", 3, now() + 30000);
    const want = new Set([d1, ...added].map((r) => r.ip));
    const seen = new Set();
    const up3 = [];
    // A steady stream whose requests outlast the router's 200 ms load reports: least_loaded places every
    // request between two reports on the same worker (it does not count its own placements since the last
    // report) and breaks ties by the lower index, so light or lock-step load never reaches a third replica.
    const s3up = stream("scale3", 6, 64);
    while (now() - tScaleUp < 30000) {
      for (const r of s3up.results) if (r.ok) seen.add(hostOf(r.decode));
      if ([...want].every((a) => seen.has(a))) break;
      await sleep(100);
    }
    up3.push(...await s3up.stop());
    for (const r of up3) if (r.ok) seen.add(hostOf(r.decode));
    for (const r of up3) check(r.ok, `scale to 3: ${r.id}: ${r.error}`);
    check(seen.size === want.size && [...want].every((a) => seen.has(a)),
          `scale to 3: requests reached ${[...seen].join(", ")}; want ${[...want].join(", ")}`);
    summary.requests += up3.length;
    log(`scale to 3: requests on all ${seen.size} decode workers ${(now() - tScaleUp) / 1000}s after the scale (${up3.length} requests, ${up3.filter((r) => !r.ok).length} failed)`);

    // ---- decode 3 -> 1 under a steady stream
    const s3 = stream("scale1", 3, 24);
    await sleep(1500);
    const tScaleDown = now();
    const { removed } = await engine.scale("decode", 1, now() + 60000);
    await sleep(2 * 2000 + 1000);  // two resolve intervals after the last replica left
    const down = await s3.stop();
    const removedFailures = [];
    for (const r of down.filter((x) => !x.ok)) {
      const on = removed.find((rep) => rep.ip === placedOn(engine, r.id));
      if (on) removedFailures.push(r);
      else check(false, `scale to 1: ${r.id} failed and was not on a removed replica: ${r.error}`);
    }
    const after = down.filter((r) => r.ok && r.t0 > Math.max(...removed.map((x) => x.exits.at(-1).t)) + 2 * 2000);
    check(after.every((r) => hostOf(r.decode) === d1.ip), `scale to 1: requests after the removal still went to ${[...new Set(after.map((r) => r.decode))]}`);
    check(after.length > 0, "scale to 1: no request completed after the removal");
    const onRemoved = down.filter((r) => r.ok && removed.some((x) => x.ip === hostOf(r.decode)));
    summary.requests += down.length;
    summary.failed += removedFailures.length;
    log(`scale to 1: ${down.length} requests during the scale-down, ${onRemoved.length} completed on the removed replicas while they drained, ` +
        `${removedFailures.length} failed on a removed replica, ${down.filter((r) => !r.ok).length - removedFailures.length} other failures (${(now() - tScaleDown) / 1000}s)`);
    for (const r of removedFailures) log(`  failed on a removed replica: ${r.id}: ${r.error}`);

    // ---- SIGKILL the last decode worker: restarted per its policy, rejoins
    const s4 = stream("kill", 2, 16);
    await sleep(1500);
    const tKill = now();
    const startsBefore = d1.starts;
    engine.kill(d1, "SIGKILL");
    log(`SIGKILL ${d1.container}`);
    let rejoined = null;
    while (now() - tKill < 20000) {
      rejoined = s4.results.find((r) => r.ok && r.t0 > tKill && hostOf(r.decode) === d1.ip);
      if (rejoined && now() - rejoined.t1 > 3000) break;
      await sleep(200);
    }
    const killRes = await s4.stop();
    check(d1.starts === startsBefore + 1, `kill: ${d1.container} was started ${d1.starts - startsBefore} times after the kill, want 1`);
    check(!!rejoined && rejoined.t1 - tKill < 15000, `kill: no request succeeded on the restarted ${d1.container} within 15 s of the kill`);
    const killFailures = killRes.filter((r) => !r.ok);
    for (const r of killFailures) {
      const inFlight = r.t0 < tKill && placedOn(engine, r.id) === d1.ip;
      const whileDown = rejoined && r.t0 < rejoined.t0 + 1000;
      check(inFlight || whileDown, `kill: ${r.id} failed after ${d1.container} had rejoined (${secs(r.t0)}s): ${r.error}`);
    }
    summary.requests += killRes.length;
    summary.failed += killFailures.length;
    const restartAt = engine.events.find((e) => e.t > tKill && e.what.startsWith(`${d1.container} restarted`))?.t;
    log(`kill: ${d1.container} restarted ${restartAt ? ((restartAt - tKill) / 1000).toFixed(1) : "?"}s, healthy ${d1.healthyAt > tKill ? ((d1.healthyAt - tKill) / 1000).toFixed(1) : "?"}s and ` +
        `serving again ${rejoined ? ((rejoined.t1 - tKill) / 1000).toFixed(1) : "never"}s after the kill; ${killRes.length} requests, ` +
        `${killFailures.length} failed (${killFailures.filter((r) => r.t0 < tKill).length} in flight on it, the rest while it was down)`);
    for (const r of killFailures.slice(0, 5)) log(`  ${r.id} (${secs(r.t0)}s-${secs(r.t1)}s): ${r.error}`);
  } catch (e) {
    failures.push(e.stack || e.message);
  }
  clearTimeout(budget);
  if (ended) return;
  ended = true;
  if (failures.length) tails(engine);
  await engine.down().catch((e) => failures.push(`cleanup: ${e.message}`));
  const runtime = ((now() - started) / 1000).toFixed(1);
  console.log(`compose_netns: ${failures.length ? "FAILED" : "OK"}: ${summary.requests} requests, ${summary.failed} failed ` +
              `(allowed: on a removed or killed replica), ${failures.length} check(s) failed, ${runtime}s`);
  for (const f of failures) console.log(`  - ${f}`);
  process.exit(failures.length ? 1 : 0);
}

function tails(engine) {
  for (const r of [...engine.replicas.values()].flat()) {
    if (!fs.existsSync(r.log)) continue;
    const lines = fs.readFileSync(r.log, "utf8").trimEnd().split("\n");
    console.log(`---- ${r.log} (last ${Math.min(25, lines.length)} of ${lines.length} lines)`);
    console.log(lines.slice(-25).join("\n"));
  }
  console.log("---- events");
  for (const e of engine.events) console.log(`  ${secs(e.t)}s ${e.what}`);
}

main();
