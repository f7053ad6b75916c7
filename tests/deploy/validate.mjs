// Offline validation of deploy/ (no container engine, no cluster): compose.yaml against the Compose
// specification's JSON schema, every Kustomize build (base and overlays, patches applied) against
// Kubernetes' schemas (kubernetes-models), and the cross-references no schema sees: depends_on targets,
// health checks, Service selectors, probe and target ports, the flags passed to `tandem` (read from
// `tandem SUB --help`), the names the router and Prometheus resolve, the metrics the dashboard queries.
// Then negative checks: each mutates a copy in memory and must be rejected, so a validator that stopped
// validating fails too.
//
//   node validate.mjs REPO_ROOT TANDEM_BINARY
//
// Exit 0: all passed; 1: a check failed (every failure names the file and the path in it).
//
// A subcommand or flag the binary does not list is reported, and its argv is then still read as
// `--flag value` pairs, so that the other checks see the service (one problem, not a cascade).
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import Ajv from "ajv";
import YAML from "yaml";
import * as apps from "kubernetes-models/apps/v1";
import * as core from "kubernetes-models/v1";
import * as batch from "kubernetes-models/batch/v1";
import * as policy from "kubernetes-models/policy/v1";
import * as networking from "kubernetes-models/networking.k8s.io/v1";

const [repoArg, tandemArg] = process.argv.slice(2);
if (!repoArg || !tandemArg) {
  console.error("usage: node validate.mjs REPO_ROOT TANDEM_BINARY");
  process.exit(2);
}
const repo = path.resolve(repoArg);
const tandemBin = path.resolve(tandemArg);
const deployDir = path.join(repo, "deploy");
const sharedDir = path.resolve(process.env.TANDEM_SHARED_DIR || path.join(repo, "..", "shared"));
const rel = (p) => path.relative(repo, p) || p;

// ---------------------------------------------------------------- errors
class Problems {
  constructor() { this.list = []; }
  add(file, where, message) { this.list.push({ file: file ? rel(file) : "", where, message }); }
  get length() { return this.list.length; }
  format() { return this.list.map((p) => `${p.file}: ${p.where || "(top)"}: ${p.message}`); }
}
const jsPath = (parts) =>
  parts.reduce((s, k) => (typeof k === "number" ? `${s}[${k}]` : s ? `${s}.${k}` : String(k)), "");

// ---------------------------------------------------------------- YAML
function parseYamlDocs(text, file) {
  const docs = YAML.parseAllDocuments(text, { merge: true });
  const out = [];
  for (const doc of docs) {
    if (doc.errors.length) throw new Error(`${rel(file)}: YAML: ${doc.errors[0].message}`);
    const value = doc.toJS({ maxAliasCount: -1 });
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}
const readText = (file, overrides) => (overrides?.has(file) ? overrides.get(file) : fs.readFileSync(file, "utf8"));

// ---------------------------------------------------------------- the tandem binary's own flags
const help = {
  subcommands: null,
  flags: new Map(),  // sub -> Map(flag -> takesValue) | null when the binary does not know `sub`
};
// Usage goes to stdout or stderr depending on the subcommand: read both.
function run(args) {
  const r = spawnSync(tandemBin, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30000 });
  if (r.error) throw new Error(`cannot run ${tandemBin}: ${r.error.message}`);
  return { ok: r.status === 0, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}
function subcommands() {
  if (!help.subcommands) {
    const { out } = run(["--help"]);
    help.subcommands = new Set([...out.matchAll(/^ {2}([a-z][a-z0-9-]*) +\S/gm)].map((m) => m[1]));
    if (!help.subcommands.size) throw new Error(`${tandemBin} --help lists no subcommands:\n${out}`);
  }
  return help.subcommands;
}
function flagsOf(sub) {
  if (!help.flags.has(sub)) {
    let flags = null;
    if (subcommands().has(sub)) {
      const { out } = run([sub, "--help"]);
      flags = new Map([...out.matchAll(/^\s+--([a-z0-9][a-z0-9-]*)( VALUE)?/gm)].map((m) => [m[1], !!m[2]]));
      if (!flags.size) flags = null;
    }
    help.flags.set(sub, flags);
  }
  return help.flags.get(sub);
}
// Checks one `tandem SUB --flag value ...` argv (without "tandem"); returns the flags it sets.
const checked = { commands: 0 };
function checkTandemArgv(argv, problems, file, where) {
  checked.commands++;
  const sub = argv[0];
  const flags = new Map();
  let known = null;
  if (typeof sub !== "string" || !subcommands().has(sub)) {
    problems.add(file, where, `\`tandem ${sub}\`: not a subcommand of ${rel(tandemBin)} (tandem --help lists ${[...subcommands()].join(", ")})`);
  } else if (!(known = flagsOf(sub))) {
    problems.add(file, where, `\`tandem ${sub} --help\` lists no flags`);
  }
  if (!known) {
    // Read on as `--flag value` pairs (a token after a flag that is no flag is its value).
    for (let i = 1; i < argv.length; i++) {
      const token = String(argv[i]);
      if (!token.startsWith("--")) continue;
      const eq = token.indexOf("=");
      if (eq >= 0) flags.set(token.slice(2, eq), token.slice(eq + 1));
      else flags.set(token.slice(2), i + 1 < argv.length && !String(argv[i + 1]).startsWith("--") ? String(argv[++i]) : true);
    }
    return { sub, flags };
  }
  for (let i = 1; i < argv.length; i++) {
    const token = String(argv[i]);
    if (!token.startsWith("--")) {
      problems.add(file, `${where}[${i}]`, `\`tandem ${sub}\` takes no positional argument, got "${token}"`);
      continue;
    }
    const eq = token.indexOf("=");
    const name = token.slice(2, eq < 0 ? undefined : eq);
    let value = eq < 0 ? undefined : token.slice(eq + 1);
    if (!known.has(name)) {
      problems.add(file, `${where}[${i}]`, `unknown flag --${name}: \`tandem ${sub} --help\` does not list it`);
      // Taken as `--flag value` when a value follows, so that the checks below still see it.
      if (value === undefined && i + 1 < argv.length && !String(argv[i + 1]).startsWith("--")) value = String(argv[++i]);
      if (!flags.has(name)) flags.set(name, value ?? true);
      continue;
    }
    if (known.get(name) && value === undefined) {
      if (i + 1 >= argv.length) {
        problems.add(file, `${where}[${i}]`, `--${name} needs a value`);
        continue;
      }
      value = String(argv[++i]);
    }
    if (flags.has(name)) problems.add(file, `${where}[${i}]`, `--${name} given twice`);
    flags.set(name, value ?? true);
  }
  return { sub, flags };
}

// A shell script's `tandem ...` commands (the Compose model service runs one under /bin/sh).
function shellWords(script) {
  const commands = [[]];
  let word = null;
  const push = () => { if (word !== null) commands[commands.length - 1].push(word); word = null; };
  for (let i = 0; i < script.length; i++) {
    const c = script[i];
    if (c === "'" || c === '"') {
      const end = script.indexOf(c, i + 1);
      word = (word ?? "") + script.slice(i + 1, end < 0 ? undefined : end);
      i = end < 0 ? script.length : end;
    } else if (c === "\\" && i + 1 < script.length) {
      if (script[i + 1] !== "\n") word = (word ?? "") + script[i + 1];
      i++;
    } else if (c === "\n" || c === ";" || c === "&" || c === "|") {
      push();
      if (commands[commands.length - 1].length) commands.push([]);
    } else if (/\s/.test(c)) {
      push();
    } else {
      word = (word ?? "") + c;
    }
  }
  push();
  return commands.filter((c) => c.length);
}
function tandemCommandsInScript(script) {
  const out = [];
  for (const words of shellWords(script)) {
    const at = words.findIndex((w) => w === "tandem" || w.endsWith("/tandem"));
    if (at >= 0 && (at === 0 || ["exec", "then", "else", "do", "if", "!"].includes(words[at - 1]))) out.push(words.slice(at + 1));
  }
  return out;
}
// The argv tandem receives from a container: ENTRYPOINT ["tandem"] unless the entrypoint/command is
// overridden. Returns a list of [argv, where] (a shell script may run several).
function tandemInvocations(entrypoint, command, where) {
  const ep = entrypoint === undefined ? ["tandem"] : typeof entrypoint === "string" ? shellWords(entrypoint)[0] ?? [] : entrypoint;
  const cmd = command === undefined ? [] : typeof command === "string" ? shellWords(command)[0] ?? [] : command;
  const argv = [...ep, ...cmd].map(String);
  if (argv[0] === "tandem" || argv[0]?.endsWith("/tandem")) return [[argv.slice(1), where]];
  if (/(^|\/)(ba)?sh$/.test(argv[0] ?? "")) {
    const c = argv.findIndex((a, i) => i > 0 && /^-[a-z]*c[a-z]*$/.test(a));
    if (c > 0 && argv[c + 1] !== undefined) return tandemCommandsInScript(argv[c + 1]).map((a) => [a, where]);
  }
  return [];
}

// dns:NAME:PORT and host:port entries of the router's --prefill / --decode / --colocated.
function workerEntries(value) {
  return String(value ?? "").split(",").filter(Boolean).map((entry) => {
    const m = /^dns:([A-Za-z0-9.-]+):(\d+)$/.exec(entry);
    if (m) return { entry, dns: true, name: m[1], port: Number(m[2]) };
    const h = /^([^:]+|\[[^\]]+\]):(\d+)$/.exec(entry);
    return h ? { entry, dns: false, name: h[1], port: Number(h[2]) } : { entry, bad: true };
  });
}
// The worker lists a router needs: --prefill and --decode together, or --colocated, or all three (a
// mixed pool). Returns [flag, message] pairs.
function routerListProblems(flags) {
  const has = (role) => workerEntries(flags.get(role)).length > 0;
  const out = [];
  if (!has("colocated")) {
    for (const role of ["prefill", "decode"]) if (!has(role)) out.push([role, `--${role} is empty (and no --colocated)`]);
  } else if (has("prefill") !== has("decode")) {
    const [given, missing] = has("prefill") ? ["prefill", "decode"] : ["decode", "prefill"];
    out.push([missing, `--${given} without --${missing}: disaggregated workers come in pairs (--colocated alone needs neither)`]);
  }
  return out;
}

// ---------------------------------------------------------------- metric names from the C++ sources
function sourceMetrics() {
  const names = new Set();
  const histograms = new Set();
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.name.startsWith(".") || e.name === "node_modules" || /^build/.test(e.name) || e.name === "deploy") continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".cc") && !e.name.endsWith("_test.cc")) {
        const text = fs.readFileSync(p, "utf8");
        for (const m of text.matchAll(/Add\w*(Counter|Gauge|Histogram)\w*\(([^";]*?)"([a-zA-Z_:][a-zA-Z0-9_:]*)"/g)) {
          names.add(m[3]);
          if (m[1] === "Histogram") histograms.add(m[3]);
        }
      }
    }
  };
  walk(repo);
  for (const h of histograms) for (const s of ["_bucket", "_sum", "_count"]) names.add(h + s);
  return names;
}

// ---------------------------------------------------------------- Compose
// Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}, $VAR, $$.
function interpolate(value, env, problems, file, where) {
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
        if (unset) problems.add(file, where, `\${${name}} is required: ${arg}`);
        return v ?? "";
      });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, problems, file, `${where}[${i}]`));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, problems, file, where ? `${where}.${k}` : k)]));
  }
  return value;
}

let composeSchema = null;  // compiled once; null when ../shared is absent
function composeSchemaValidator() {
  const file = path.join(sharedDir, "testdata", "schemas", "compose-spec.json");
  if (composeSchema === null && fs.existsSync(file)) {
    const schema = JSON.parse(fs.readFileSync(file, "utf8"));
    // The file names draft-07 as "https://json-schema.org/draft-07/schema"; ajv registers the draft-07
    // meta-schema under its canonical id.
    if (/json-schema\.org\/draft-07\/schema#?$/.test(schema.$schema ?? "")) schema.$schema = "http://json-schema.org/draft-07/schema#";
    composeSchema = new Ajv({ strict: false, allErrors: true }).compile(schema);
  }
  return composeSchema;
}

const DAEMONS = new Set(["router", "prefill", "decode", "colocated"]);
const WORKER_ROLES = ["prefill", "decode", "colocated"];  // the router's flag of each is --ROLE
const K8S_ROLES = ["router", "prefill", "decode"];        // deploy/k8s runs disaggregated workers only
const isTandemImage = (image) => /(^|\/)tandem(:[^/]*)?$/.test(String(image ?? ""));
const serviceProfiles = (svc) => svc.profiles ?? [];
const activeIn = (svc, profile) => serviceProfiles(svc).length === 0 || serviceProfiles(svc).includes(profile);

// compose: the parsed (merged, interpolated) document. ctx: files read beside it.
function checkCompose(compose, ctx, problems) {
  const file = ctx.composeFile;
  const validate = composeSchemaValidator();
  if (validate && !validate(compose)) {
    for (const e of validate.errors) {
      problems.add(file, e.instancePath.replace(/^\//, "").replaceAll("/", ".") || "(top)",
        `Compose schema: ${e.message}${e.params?.additionalProperty ? ` ("${e.params.additionalProperty}")` : ""}`);
    }
  }
  const services = compose.services ?? {};
  const info = new Map();  // service -> { sub, flags }
  for (const [name, svc] of Object.entries(services)) {
    if (!svc || typeof svc !== "object") continue;
    const where = `services.${name}`;
    const tandem = isTandemImage(svc.image);
    let daemon = null;
    if (tandem) {
      const invocations = tandemInvocations(svc.entrypoint, svc.command, `${where}.command`);
      // One-shot helpers (restart "no", e.g. the cluster-secret maker) may run a plain shell script.
      if (!invocations.length && svc.restart !== "no") problems.add(file, `${where}.command`, "runs no `tandem` command");
      for (const [argv, w] of invocations) {
        const parsed = checkTandemArgv(argv, problems, file, w);
        if (DAEMONS.has(parsed.sub)) daemon = parsed;
      }
    }
    info.set(name, { daemon, svc });
    // Health checks: every one asks the daemon's gRPC health through `tandem health`.
    if (svc.healthcheck && !svc.healthcheck.disable) {
      const test = svc.healthcheck.test;
      if (!Array.isArray(test) || test[0] !== "CMD" || test[1] !== "tandem" || test[2] !== "health") {
        problems.add(file, `${where}.healthcheck.test`, `must be ["CMD", "tandem", "health", "--addr", "127.0.0.1:PORT"], got ${JSON.stringify(test)}`);
      } else {
        const { flags } = checkTandemArgv(test.slice(2), problems, file, `${where}.healthcheck.test`);
        const addr = String(flags.get("addr") ?? "");
        const port = daemon?.flags.get("port");
        if (!/^127\.0\.0\.1:\d+$/.test(addr)) problems.add(file, `${where}.healthcheck.test`, `--addr must be 127.0.0.1:PORT, got "${addr}"`);
        else if (port !== undefined && addr !== `127.0.0.1:${port}`) {
          problems.add(file, `${where}.healthcheck.test`, `checks ${addr} but the daemon listens on --port ${port}`);
        }
      }
    }
    if (daemon) {
      const role = daemon.sub;
      if (!svc.healthcheck) problems.add(file, where, `a tandem ${role} service needs a healthcheck (tandem health)`);
      if (daemon.flags.get("host") !== "0.0.0.0") problems.add(file, `${where}.command`, "--host must be 0.0.0.0: other containers cannot reach 127.0.0.1");
      if (!/^\d+$/.test(String(daemon.flags.get("port") ?? ""))) problems.add(file, `${where}.command`, "--port must be a fixed port (the router and health check use it)");
      if (!["always", "unless-stopped", "on-failure"].some((p) => String(svc.restart ?? "").startsWith(p))) {
        problems.add(file, `${where}.restart`, `a daemon needs a restart policy (always, unless-stopped, on-failure), got ${JSON.stringify(svc.restart)}`);
      }
      if (role !== "router") {
        if (svc.container_name) problems.add(file, `${where}.container_name`, "a worker with a fixed container_name cannot be scaled");
        if (svc.ports?.length) problems.add(file, `${where}.ports`, "a worker publishing fixed host ports cannot be scaled");
      }
      // GPU workers reserve a GPU and run the CUDA backend; CPU ones do neither.
      const devices = svc.deploy?.resources?.reservations?.devices ?? [];
      const gpu = devices.some((d) => d.driver === "nvidia" && (d.capabilities ?? []).includes("gpu"));
      const cuda = daemon.flags.get("backend") === "cuda";
      if (role !== "router" && gpu !== cuda) {
        problems.add(file, where, cuda ? "--backend cuda without an nvidia GPU reservation (deploy.resources.reservations.devices)" : "reserves a GPU but does not run --backend cuda");
      }
      if (role !== "router" && serviceProfiles(svc).includes("gpu") !== cuda) {
        problems.add(file, `${where}.profiles`, "a worker in profile gpu must run --backend cuda, and only there");
      }
      // --model lies under one of the service's volumes.
      const model = String(daemon.flags.get("model") ?? "");
      const targets = (svc.volumes ?? []).map((v) => (typeof v === "string" ? v.split(":")[1] : v.target));
      if (!targets.some((t) => t && (model === t || model.startsWith(`${t.replace(/\/$/, "")}/`)))) {
        problems.add(file, `${where}.volumes`, `--model ${model} is not under any volume mounted in the service`);
      }
    } else if (tandem && svc.restart !== "no") {
      problems.add(file, `${where}.restart`, `a one-shot tandem service must have restart: "no" (it is waited on with service_completed_successfully)`);
    }
    // Volumes: named ones are declared; relative bind sources exist (ones from a variable are the user's).
    for (const [i, v] of (svc.volumes ?? []).entries()) {
      const source = typeof v === "string" ? v.split(":")[0] : v.source;
      const raw = ctx.raw?.services?.[name]?.volumes?.[i];
      const fromVariable = JSON.stringify(raw ?? "").includes("$");
      if (!source) continue;
      if (/^[.~/]/.test(source)) {
        if (!fromVariable && !fs.existsSync(path.resolve(path.dirname(file), source))) {
          problems.add(file, `${where}.volumes[${i}]`, `bind source ${source} does not exist`);
        }
      } else if (!(compose.volumes && source in compose.volumes)) {
        problems.add(file, `${where}.volumes[${i}]`, `named volume "${source}" is not declared under volumes:`);
      }
    }
  }

  // depends_on: targets exist, and are active whenever the dependent is; conditions fit the target.
  const profiles = new Set(Object.values(services).flatMap((s) => serviceProfiles(s ?? {})));
  for (const [name, svc] of Object.entries(services)) {
    const deps = svc?.depends_on ?? {};
    const entries = Array.isArray(deps) ? deps.map((d) => [d, {}]) : Object.entries(deps);
    for (const [dep, opts] of entries) {
      const where = `services.${name}.depends_on.${dep}`;
      const target = services[dep];
      if (!target) { problems.add(file, where, `depends on "${dep}", which is not a service`); continue; }
      for (const p of profiles) {
        if (activeIn(svc, p) && !activeIn(target, p) && opts.required !== false) {
          problems.add(file, where, `"${name}" is active in profile ${p} but "${dep}" is not`);
        }
      }
      if (opts.condition === "service_healthy" && !target.healthcheck) {
        problems.add(file, where, `condition service_healthy, but "${dep}" has no healthcheck`);
      }
      if (opts.condition === "service_completed_successfully" && target.restart && target.restart !== "no") {
        problems.add(file, where, `condition service_completed_successfully, but "${dep}" restarts (${target.restart})`);
      }
    }
  }

  // The names the router resolves (dns:NAME:PORT) and Prometheus scrapes, per profile: a service or a
  // network alias of one active in that profile, running the right daemon on that port.
  const namesIn = (profile) => {
    const names = new Map();
    for (const [name, { svc, daemon }] of info) {
      if (!activeIn(svc, profile)) continue;
      const aliases = Object.values(svc.networks && !Array.isArray(svc.networks) ? svc.networks : {})
        .flatMap((n) => n?.aliases ?? []);
      for (const n of [name, ...aliases]) names.set(n, [...(names.get(n) ?? []), { name, daemon }]);
    }
    return names;
  };
  const tandemProfiles = [...profiles].filter((p) => [...info.values()].some((s) => s.daemon && serviceProfiles(s.svc).includes(p)));
  const scrapeNamesFound = new Set();  // Prometheus names that resolve in at least one profile
  for (const p of tandemProfiles) {
    const names = namesIn(p);
    const daemons = [...info].filter(([, s]) => s.daemon && activeIn(s.svc, p));
    if (!daemons.some(([, s]) => s.daemon.sub === "router")) problems.add(file, "services", `profile ${p} runs no router`);
    const pooled = new Set();  // worker services some router of this profile resolves
    for (const [name, { daemon }] of daemons.filter(([, s]) => s.daemon.sub === "router")) {
      for (const [, message] of routerListProblems(daemon.flags)) problems.add(file, `services.${name}.command`, message);
      for (const role of WORKER_ROLES) {
        for (const e of workerEntries(daemon.flags.get(role))) {
          const where = `services.${name}.command --${role} ${e.entry}`;
          if (e.bad) { problems.add(file, where, "neither host:port nor dns:NAME:PORT"); continue; }
          const found = names.get(e.name);
          if (!found) { problems.add(file, where, `"${e.name}" is no service or network alias in profile ${p}`); continue; }
          for (const f of found) {
            pooled.add(f.name);
            if (f.daemon?.sub !== role) problems.add(file, where, `"${e.name}" resolves to service ${f.name}, which is not a ${role} worker`);
            else if (String(f.daemon.flags.get("port")) !== String(e.port)) {
              problems.add(file, where, `port ${e.port}, but service ${f.name} listens on --port ${f.daemon.flags.get("port")}`);
            }
          }
        }
      }
    }
    for (const [name, { daemon }] of daemons) {
      if (daemon.sub !== "router" && !pooled.has(name)) {
        problems.add(file, `services.${name}`, `a ${daemon.sub} worker in profile ${p} that no router of the profile lists (--${daemon.sub})`);
      }
    }
    // Prometheus: every job's DNS names resolve to daemons whose --metrics-port is the scrape port, and
    // every daemon is scraped. One config serves every profile, so a name may be absent from some
    // (Prometheus gets NXDOMAIN: no targets), but not from all of them (below).
    if (ctx.prometheus) {
      const scraped = new Set();
      for (const [j, job] of (ctx.prometheus.scrape_configs ?? []).entries()) {
        for (const [d, sd] of (job.dns_sd_configs ?? []).entries()) {
          const where = `scrape_configs[${j}].dns_sd_configs[${d}]`;
          if ((sd.type ?? "SRV") !== "A") problems.add(ctx.prometheusFile, where, "type must be A (Compose's DNS serves A records)");
          for (const n of sd.names ?? []) {
            const found = names.get(n);
            if (!found) continue;
            scrapeNamesFound.add(n);
            for (const f of found) {
              scraped.add(f.name);
              const mp = f.daemon?.flags.get("metrics-port");
              if (String(mp) !== String(sd.port)) problems.add(ctx.prometheusFile, where, `scrapes ${n}:${sd.port}, but service ${f.name} serves /metrics on --metrics-port ${mp}`);
            }
          }
        }
      }
      for (const [name] of daemons) if (!scraped.has(name)) problems.add(ctx.prometheusFile, "scrape_configs", `service ${name} (profile ${p}) is not scraped`);
    }
  }
  for (const [j, job] of (ctx.prometheus?.scrape_configs ?? []).entries()) {
    for (const [d, sd] of (job.dns_sd_configs ?? []).entries()) {
      for (const n of sd.names ?? []) {
        if (!scrapeNamesFound.has(n)) {
          problems.add(ctx.prometheusFile, `scrape_configs[${j}].dns_sd_configs[${d}]`, `"${n}" is no service or alias in any profile (${tandemProfiles.join(", ")})`);
        }
      }
    }
  }
  return info;
}

// Grafana: the provisioned datasource, the dashboard provider's folder, every query's metric names.
function checkGrafana(ctx, metrics, problems) {
  const uids = new Set((ctx.datasources?.datasources ?? []).map((d) => d.uid));
  if (!uids.size) problems.add(ctx.datasourcesFile, "datasources", "no datasource with a uid");
  for (const [d, dash] of ctx.dashboards) {
    const visit = (panels, where) => panels.forEach((panel, i) => {
      const w = `${where}[${i}]`;
      if (panel.panels?.length) visit(panel.panels, `${w}.panels`);
      const ds = panel.datasource?.uid;
      if (panel.type !== "row" && ds && !uids.has(ds)) problems.add(d, `${w}.datasource`, `uid "${ds}" is not a provisioned datasource`);
      for (const [t, target] of (panel.targets ?? []).entries()) {
        const expr = String(target.expr ?? "");
        if (!expr) problems.add(d, `${w}.targets[${t}]`, "no expr");
        for (const m of expr.replace(/\{[^}]*\}/g, "").matchAll(/\btandem_[a-z0-9_]+\b/g)) {
          if (!metrics.has(m[0])) problems.add(d, `${w}.targets[${t}].expr`, `metric ${m[0]} is registered nowhere in the C++ sources`);
        }
      }
    });
    visit(dash.panels ?? [], "panels");
  }
}

// ---------------------------------------------------------------- Kustomize (what deploy/k8s uses)
const KUSTOMIZATION_KEYS = new Set(["apiVersion", "kind", "resources", "images", "replicas", "patches", "namespace"]);
function pointer(p) {
  if (p === "") return [];
  if (!p.startsWith("/")) throw new Error(`JSON pointer "${p}" does not start with /`);
  return p.slice(1).split("/").map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
}
function deepEqual(a, b) { return JSON.stringify(a) === JSON.stringify(b); }
function applyJson6902(doc, ops) {
  const resolve = (parts, create = false) => {
    let node = doc;
    for (const k of parts.slice(0, -1)) {
      const next = Array.isArray(node) ? node[Number(k)] : node?.[k];
      if (next === undefined || next === null || typeof next !== "object") throw new Error(`path /${parts.join("/")}: /${k} does not exist`);
      node = next;
    }
    return [node, parts[parts.length - 1]];
  };
  const get = (p) => {
    let node = doc;
    for (const k of pointer(p)) {
      if (node === null || typeof node !== "object" || !(k in node)) throw new Error(`path ${p} does not exist`);
      node = node[k];
    }
    return node;
  };
  const add = (p, value) => {
    const parts = pointer(p);
    const [parent, key] = resolve(parts);
    if (Array.isArray(parent)) {
      const i = key === "-" ? parent.length : Number(key);
      if (!(i >= 0 && i <= parent.length)) throw new Error(`path ${p}: index out of range`);
      parent.splice(i, 0, value);
    } else parent[key] = value;
  };
  const remove = (p) => {
    const [parent, key] = resolve(pointer(p));
    if (!(key in parent)) throw new Error(`path ${p} does not exist`);
    if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else delete parent[key];
  };
  ops.forEach((op, i) => {
    try {
      const value = structuredClone(op.value);
      switch (op.op) {
        case "add": add(op.path, value); break;
        case "remove": remove(op.path); break;
        case "replace": get(op.path); remove(op.path); add(op.path, value); break;
        case "test": if (!deepEqual(get(op.path), op.value)) throw new Error(`test failed: ${op.path} is ${JSON.stringify(get(op.path))}, not ${JSON.stringify(op.value)}`); break;
        case "move": { const v = get(op.from); remove(op.from); add(op.path, v); break; }
        case "copy": add(op.path, structuredClone(get(op.from))); break;
        default: throw new Error(`unknown op "${op.op}"`);
      }
    } catch (e) {
      throw new Error(`op ${i} (${op.op} ${op.path}): ${e.message}`);
    }
  });
}
function matchesTarget(obj, target) {
  if (target.kind && obj.kind !== target.kind) return false;
  if (target.name && !new RegExp(`^(?:${target.name})$`).test(obj.metadata?.name ?? "")) return false;
  if (target.namespace && obj.metadata?.namespace !== target.namespace) return false;
  const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : ["", obj.apiVersion];
  if (target.group !== undefined && target.group !== group) return false;
  if (target.version && target.version !== version) return false;
  const selects = (sel, map) => !sel || sel.split(",").every((term) => {
    const [k, v] = term.split("=").map((s) => s.trim());
    return v === undefined ? k in (map ?? {}) : (map ?? {})[k] === v;
  });
  return selects(target.labelSelector, obj.metadata?.labels) && selects(target.annotationSelector, obj.metadata?.annotations);
}
const podSpecOf = (obj) => (obj.kind === "Pod" ? obj.spec : obj.kind === "CronJob" ? obj.spec?.jobTemplate?.spec?.template?.spec : obj.spec?.template?.spec);
// Builds a kustomization directory: [{obj, file}], problems recorded (file and path named).
function kustomizeBuild(dir, problems, overrides, stack = []) {
  const kfile = path.join(dir, "kustomization.yaml");
  if (stack.includes(kfile)) { problems.add(kfile, "resources", "cycle"); return []; }
  let k;
  try { [k] = parseYamlDocs(readText(kfile, overrides), kfile); } catch (e) { problems.add(kfile, "", e.message); return []; }
  if (k?.kind !== "Kustomization" || k.apiVersion !== "kustomize.config.k8s.io/v1beta1") {
    problems.add(kfile, "kind", "must be apiVersion kustomize.config.k8s.io/v1beta1, kind Kustomization");
  }
  for (const key of Object.keys(k ?? {})) {
    if (!KUSTOMIZATION_KEYS.has(key)) problems.add(kfile, key, `"${key}" is not implemented by this validator (it implements ${[...KUSTOMIZATION_KEYS].join(", ")}): extend tests/deploy/validate.mjs`);
  }
  const out = [];
  for (const [i, r] of (k.resources ?? []).entries()) {
    const p = path.resolve(dir, r);
    if (fs.existsSync(p) && fs.statSync(p).isDirectory()) out.push(...kustomizeBuild(p, problems, overrides, [...stack, kfile]));
    else if (r.startsWith("..") || path.isAbsolute(r)) problems.add(kfile, `resources[${i}]`, `file ${r} lies outside the kustomization root (kustomize refuses it)`);
    else if (!fs.existsSync(p) && !overrides?.has(p)) problems.add(kfile, `resources[${i}]`, `${r} does not exist`);
    else {
      try { out.push(...parseYamlDocs(readText(p, overrides), p).map((obj) => ({ obj, file: p }))); } catch (e) { problems.add(p, "", e.message); }
    }
  }
  for (const [i, img] of (k.images ?? []).entries()) {
    let used = false;
    for (const { obj } of out) {
      const spec = podSpecOf(obj);
      for (const c of [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]) {
        const m = /^(.*?)(?::([^:/@]+))?(?:@(.+))?$/.exec(c.image ?? "");
        if (m && m[1] === img.name) {
          used = true;
          c.image = `${img.newName ?? m[1]}${img.digest ? `@${img.digest}` : img.newTag ? `:${img.newTag}` : m[2] ? `:${m[2]}` : ""}`;
        }
      }
    }
    if (!used) problems.add(kfile, `images[${i}]`, `no container uses image ${img.name}`);
  }
  for (const [i, r] of (k.replicas ?? []).entries()) {
    const targets = out.filter(({ obj }) => obj.metadata?.name === r.name && ["Deployment", "StatefulSet", "ReplicaSet"].includes(obj.kind));
    if (!targets.length) problems.add(kfile, `replicas[${i}]`, `no Deployment or StatefulSet named ${r.name}`);
    for (const { obj } of targets) obj.spec.replicas = r.count;
  }
  for (const [i, patch] of (k.patches ?? []).entries()) {
    const where = `patches[${i}]`;
    const pfile = patch.path ? path.resolve(dir, patch.path) : kfile;
    let ops;
    try {
      ops = patch.path ? parseYamlDocs(readText(pfile, overrides), pfile)[0] : YAML.parse(patch.patch);
    } catch (e) { problems.add(pfile, "", e.message); continue; }
    if (!Array.isArray(ops)) { problems.add(pfile, "", "strategic-merge patches are not implemented by this validator: write a JSON 6902 patch (a list of ops)"); continue; }
    if (!patch.target) { problems.add(kfile, where, "a JSON 6902 patch needs a target"); continue; }
    const targets = out.filter(({ obj }) => matchesTarget(obj, patch.target));
    if (!targets.length) problems.add(kfile, `${where}.target`, `matches no resource: ${JSON.stringify(patch.target)}`);
    for (const { obj, file } of targets) {
      try { applyJson6902(obj, ops); } catch (e) { problems.add(pfile, `${obj.kind}/${obj.metadata?.name} (from ${rel(file)})`, e.message); }
    }
  }
  if (k.namespace) for (const { obj } of out) obj.metadata = { ...obj.metadata, namespace: k.namespace };
  return out;
}

// ---------------------------------------------------------------- Kubernetes objects
const MODELS = {
  "apps/v1/Deployment": apps.Deployment, "apps/v1/StatefulSet": apps.StatefulSet, "apps/v1/DaemonSet": apps.DaemonSet,
  "v1/Service": core.Service, "v1/ConfigMap": core.ConfigMap, "v1/Secret": core.Secret,
  "v1/PersistentVolumeClaim": core.PersistentVolumeClaim, "v1/ServiceAccount": core.ServiceAccount, "v1/Namespace": core.Namespace,
  "batch/v1/Job": batch.Job, "networking.k8s.io/v1/NetworkPolicy": networking.NetworkPolicy, "policy/v1/PodDisruptionBudget": policy.PodDisruptionBudget,
};
// Kubernetes' schemas through kubernetes-models; its validators ignore unknown fields (kubectl's strict
// field validation rejects them), so the object is handed over behind proxies that record which fields
// the validator reads: a field of a valid object that no schema property reads is unknown.
function trackReads(value, where, unread) {
  if (value === null || typeof value !== "object") return value;
  const read = new Set();
  let enumerated = false;
  const copy = Array.isArray(value) ? [] : {};
  for (const k of Object.keys(value)) copy[k] = trackReads(value[k], `${where}${Array.isArray(value) ? `[${k}]` : `.${k}`}`, unread);
  unread.push(() => (enumerated || Array.isArray(value) ? [] : Object.keys(value).filter((k) => !read.has(k)).map((k) => `${where}.${k}`)));
  return new Proxy(copy, {
    get(t, k, r) { if (typeof k === "string") read.add(k); return Reflect.get(t, k, r); },
    has(t, k) { if (typeof k === "string") read.add(k); return Reflect.has(t, k); },
    ownKeys(t) { enumerated = true; return Reflect.ownKeys(t); },
  });
}
function validateK8sObject(obj, file, problems) {
  const id = `${obj?.kind}/${obj?.metadata?.name}`;
  const Model = MODELS[`${obj?.apiVersion}/${obj?.kind}`];
  if (!Model) { problems.add(file, id, `no schema for apiVersion ${obj?.apiVersion} kind ${obj?.kind} (add it to MODELS)`); return; }
  const unread = [];
  const proxy = trackReads(obj, "", unread);
  try {
    Model.prototype.validate.call(proxy);
  } catch (e) {
    for (const m of String(e.message).split(", data")) problems.add(file, id, `Kubernetes schema: ${m.replace(/^data/, "")}`);
    return;
  }
  for (const f of unread.flatMap((u) => u())) problems.add(file, `${id} ${f.slice(1)}`, "unknown field (not in the Kubernetes schema)");
}
const selects = (selector, labels) => !!selector && Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);
// A LabelSelector (matchLabels and matchExpressions); an empty one selects everything.
const labelSelects = (sel, labels) =>
  Object.entries(sel?.matchLabels ?? {}).every(([k, v]) => labels?.[k] === v) &&
  (sel?.matchExpressions ?? []).every(({ key, operator, values }) => {
    const has = labels && key in labels;
    switch (operator) {
      case "In": return has && values.includes(labels[key]);
      case "NotIn": return !has || !values.includes(labels[key]);
      case "Exists": return has;
      case "DoesNotExist": return !has;
      default: return false;
    }
  });

function checkK8sBuild(name, items, problems, { gpuExpected }) {
  for (const { obj, file } of items) validateK8sObject(obj, file, problems);
  const workloads = items.filter(({ obj }) => podSpecOf(obj));
  const services = items.filter(({ obj }) => obj.kind === "Service");
  const pvcs = new Set(items.filter(({ obj }) => obj.kind === "PersistentVolumeClaim").map(({ obj }) => obj.metadata.name));
  const configMaps = new Set(items.filter(({ obj }) => obj.kind === "ConfigMap").map(({ obj }) => obj.metadata.name));
  const roles = new Map();  // workload name -> { role, flags, container, obj }
  let gpuWorkers = 0;
  for (const { obj, file } of workloads) {
    const id = `${obj.kind}/${obj.metadata.name}`;
    const spec = podSpecOf(obj);
    const tmplLabels = obj.spec?.template?.metadata?.labels;
    if (obj.spec?.selector && !selects(obj.spec.selector.matchLabels, tmplLabels)) {
      problems.add(file, `${id} spec.selector`, "does not match the pod template's labels");
    }
    const volumes = new Set((spec.volumes ?? []).map((v) => v.name));
    for (const v of spec.volumes ?? []) {
      if (v.persistentVolumeClaim && !pvcs.has(v.persistentVolumeClaim.claimName)) {
        problems.add(file, `${id} volumes.${v.name}`, `PersistentVolumeClaim ${v.persistentVolumeClaim.claimName} is not in this build`);
      }
      if (v.configMap && !configMaps.has(v.configMap.name)) problems.add(file, `${id} volumes.${v.name}`, `ConfigMap ${v.configMap.name} is not in this build`);
    }
    const all = [...(spec.initContainers ?? []).map((c) => ["initContainers", c]), ...(spec.containers ?? []).map((c) => ["containers", c])];
    for (const [kind, c] of all) {
      const where = `${id} ${kind}.${c.name}`;
      for (const m of c.volumeMounts ?? []) if (!volumes.has(m.name)) problems.add(file, `${where}.volumeMounts`, `volume "${m.name}" is not declared`);
      const ports = c.ports ?? [];
      const portOk = (p) => ports.some((cp) => cp.containerPort === p || (cp.name && cp.name === p));
      for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
        const pr = c[probe];
        if (!pr) continue;
        const port = pr.grpc?.port ?? pr.httpGet?.port ?? pr.tcpSocket?.port;
        if (port !== undefined && !portOk(port)) problems.add(file, `${where}.${probe}`, `port ${port} is not a port of the container`);
      }
      if (!isTandemImage(c.image)) continue;
      const invocations = tandemInvocations(c.command, c.args, `${where}.args`);
      if (!invocations.length) problems.add(file, `${where}.args`, "runs no `tandem` command");
      for (const [argv, w] of invocations) {
        const parsed = checkTandemArgv(argv, problems, file, w);
        if (kind !== "containers" || !DAEMONS.has(parsed.sub)) continue;
        const { flags } = parsed;
        roles.set(obj.metadata.name, { role: parsed.sub, flags, container: c, obj, file });
        if (flags.get("host") !== "0.0.0.0") problems.add(file, w, "--host must be 0.0.0.0: other pods cannot reach 127.0.0.1");
        const port = Number(flags.get("port"));
        if (!ports.some((cp) => cp.containerPort === port)) problems.add(file, `${where}.ports`, `--port ${flags.get("port")} is not a containerPort`);
        if (c.readinessProbe?.grpc?.port !== port) problems.add(file, `${where}.readinessProbe`, `must be a grpc probe on --port ${flags.get("port")}`);
        const ann = obj.spec.template?.metadata?.annotations ?? {};
        if (ann["prometheus.io/scrape"] !== "true" || ann["prometheus.io/port"] !== String(flags.get("metrics-port"))) {
          problems.add(file, `${id} template.metadata.annotations`, `prometheus.io/scrape "true" and prometheus.io/port "${flags.get("metrics-port")}" (--metrics-port) expected`);
        }
        const model = String(flags.get("model") ?? "");
        if (!(c.volumeMounts ?? []).some((m) => model === m.mountPath || model.startsWith(`${m.mountPath.replace(/\/$/, "")}/`))) {
          problems.add(file, `${where}.volumeMounts`, `--model ${model} is not under a mounted volume`);
        }
        if (parsed.sub !== "router") {
          const gpus = c.resources?.limits?.["nvidia.com/gpu"];
          const cuda = flags.get("backend") === "cuda";
          if (!!gpus !== cuda) problems.add(file, where, cuda ? "--backend cuda without an nvidia.com/gpu limit" : "an nvidia.com/gpu limit without --backend cuda");
          if (cuda) gpuWorkers++;
        }
        if (!(obj.spec.template.spec.terminationGracePeriodSeconds > 30)) problems.add(file, `${id} terminationGracePeriodSeconds`, "give streams time to drain (> 30 s)");
      }
    }
  }
  if (gpuExpected && gpuWorkers === 0) problems.add("", name, "the GPU overlay runs no worker with --backend cuda and an nvidia.com/gpu limit");
  if (!gpuExpected && gpuWorkers > 0) problems.add("", name, "a CPU build runs a GPU worker");
  // Services select pods, and their target ports exist there.
  for (const { obj, file } of services) {
    const id = `Service/${obj.metadata.name}`;
    const matched = workloads.filter(({ obj: w }) => selects(obj.spec?.selector, w.spec?.template?.metadata?.labels));
    if (!matched.length) { problems.add(file, `${id} spec.selector`, `${JSON.stringify(obj.spec?.selector)} selects no workload's pods`); continue; }
    for (const [i, p] of (obj.spec.ports ?? []).entries()) {
      const target = p.targetPort ?? p.port;
      for (const { obj: w } of matched) {
        const ok = (podSpecOf(w).containers ?? []).some((c) => (c.ports ?? []).some((cp) => cp.containerPort === target || cp.name === target));
        if (!ok) problems.add(file, `${id} spec.ports[${i}].targetPort`, `${target} is no container port of ${w.kind}/${w.metadata.name}`);
      }
    }
  }
  // NetworkPolicies select pods, and the ports they open exist on them.
  for (const { obj, file } of items.filter(({ obj }) => obj.kind === "NetworkPolicy")) {
    const id = `NetworkPolicy/${obj.metadata.name}`;
    const matched = workloads.filter(({ obj: w }) => labelSelects(obj.spec?.podSelector, w.spec?.template?.metadata?.labels));
    if (!matched.length) problems.add(file, `${id} spec.podSelector`, "selects no workload's pods");
    for (const [i, rule] of (obj.spec?.ingress ?? []).entries()) {
      for (const [j, from] of (rule.from ?? []).entries()) {
        if (from.podSelector && !from.namespaceSelector && !workloads.some(({ obj: w }) => labelSelects(from.podSelector, w.spec?.template?.metadata?.labels))) {
          problems.add(file, `${id} spec.ingress[${i}].from[${j}].podSelector`, "selects no workload's pods");
        }
      }
      for (const [j, p] of (rule.ports ?? []).entries()) {
        for (const { obj: w } of matched) {
          if (!(podSpecOf(w).containers ?? []).some((c) => (c.ports ?? []).some((cp) => cp.containerPort === p.port || cp.name === p.port))) {
            problems.add(file, `${id} spec.ingress[${i}].ports[${j}]`, `port ${p.port} is no container port of ${w.kind}/${w.metadata.name}`);
          }
        }
      }
    }
  }
  for (const role of K8S_ROLES) if (![...roles.values()].some((r) => r.role === role)) problems.add("", name, `no workload runs tandem ${role}`);
  // The router's dns:NAME:PORT entries name a headless Service in this build selecting that role's pods.
  for (const r of [...roles.values()].filter((r) => r.role === "router")) {
    for (const [, message] of routerListProblems(r.flags)) problems.add(r.file, `${r.obj.kind}/${r.obj.metadata.name} args`, message);
    for (const role of WORKER_ROLES) {
      const entries = workerEntries(r.flags.get(role));
      for (const e of entries) {
        const where = `${r.obj.kind}/${r.obj.metadata.name} args --${role} ${e.entry}`;
        if (e.bad || !e.dns) { problems.add(r.file, where, "use dns:SERVICE:PORT (a headless Service) so that scaled pods join the pool"); continue; }
        const short = e.name.split(".")[0];
        const svc = services.find(({ obj }) => obj.metadata.name === short);
        if (!svc) { problems.add(r.file, where, `no Service named ${short} in this build`); continue; }
        if (svc.obj.spec.clusterIP !== "None") problems.add(svc.file, `Service/${short} spec.clusterIP`, "must be None (headless): the router needs every pod's address, not one virtual IP");
        const sp = (svc.obj.spec.ports ?? []).find((p) => p.port === e.port);
        if (!sp) { problems.add(r.file, where, `Service ${short} has no port ${e.port}`); continue; }
        for (const w of [...roles.values()].filter((w) => selects(svc.obj.spec.selector, w.obj.spec.template.metadata.labels))) {
          if (w.role !== role) problems.add(r.file, where, `Service ${short} selects ${w.obj.metadata.name}, a ${w.role}`);
          const tp = sp.targetPort ?? sp.port;
          const cp = (w.container.ports ?? []).find((p) => p.name === tp || p.containerPort === tp);
          if (cp && String(cp.containerPort) !== String(w.flags.get("port"))) problems.add(r.file, where, `reaches container port ${cp.containerPort}, but ${w.obj.metadata.name} listens on --port ${w.flags.get("port")}`);
        }
      }
    }
  }
}

// ---------------------------------------------------------------- loading everything
function loadCompose(problems, overrides) {
  const composeFile = path.join(deployDir, "compose.yaml");
  const [raw] = parseYamlDocs(readText(composeFile, overrides), composeFile);
  const env = {};  // as on a machine that sets none of the variables: every default applies
  const compose = interpolate(raw, env, problems, composeFile, "");
  const ctx = { composeFile, raw };
  const mountSource = (service, target) => {
    for (const v of compose.services?.[service]?.volumes ?? []) {
      const [src, tgt] = typeof v === "string" ? v.split(":") : [v.source, v.target];
      if (tgt === target) return path.resolve(deployDir, src);
    }
    return null;
  };
  ctx.prometheusFile = mountSource("prometheus", "/etc/prometheus/prometheus.yml");
  if (!ctx.prometheusFile) problems.add(composeFile, "services.prometheus.volumes", "mounts no /etc/prometheus/prometheus.yml");
  else ctx.prometheus = parseYamlDocs(readText(ctx.prometheusFile, overrides), ctx.prometheusFile)[0];
  const provisioning = mountSource("grafana", "/etc/grafana/provisioning");
  ctx.dashboards = [];
  if (!provisioning) problems.add(composeFile, "services.grafana.volumes", "mounts no /etc/grafana/provisioning");
  else {
    ctx.datasourcesFile = path.join(provisioning, "datasources", "prometheus.yaml");
    ctx.datasources = parseYamlDocs(readText(ctx.datasourcesFile, overrides), ctx.datasourcesFile)[0];
    const providersFile = path.join(provisioning, "dashboards", "tandem.yaml");
    const providers = parseYamlDocs(readText(providersFile, overrides), providersFile)[0];
    for (const [i, p] of (providers.providers ?? []).entries()) {
      const dir = mountSource("grafana", p.options?.path);
      if (!dir) { problems.add(providersFile, `providers[${i}].options.path`, `${p.options?.path} is not a volume the grafana service mounts`); continue; }
      const jsons = fs.readdirSync(dir).filter((f) => f.endsWith(".json"));
      if (!jsons.length) problems.add(providersFile, `providers[${i}]`, `no dashboard JSON in ${rel(dir)}`);
      for (const f of jsons) {
        const file = path.join(dir, f);
        try { ctx.dashboards.push([file, JSON.parse(readText(file, overrides))]); } catch (e) { problems.add(file, "", `JSON: ${e.message}`); }
      }
    }
  }
  return { compose, ctx };
}
const k8sDir = path.join(deployDir, "k8s");
function k8sBuilds() {
  const builds = [["base", path.join(k8sDir, "base")]];
  const overlays = path.join(k8sDir, "overlays");
  for (const o of fs.existsSync(overlays) ? fs.readdirSync(overlays).sort() : []) builds.push([`overlays/${o}`, path.join(overlays, o)]);
  return builds;
}
function checkAllK8s(problems, overrides, only) {
  for (const [name, dir] of k8sBuilds()) {
    if (only && name !== only) continue;
    const items = kustomizeBuild(dir, problems, overrides);
    checkK8sBuild(`deploy/k8s/${name}`, items, problems, { gpuExpected: /gpu/.test(name) });
  }
}
function dockerComposeConfig() {
  try { execFileSync("docker", ["compose", "version"], { stdio: "ignore" }); } catch { return null; }
  try {
    execFileSync("docker", ["compose", "-f", path.join(deployDir, "compose.yaml"), "--profile", "cpu", "--profile", "gpu",
      "--profile", "colocated", "--profile", "observability", "config", "--quiet"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return "";
  } catch (e) {
    return `${e.stdout || ""}${e.stderr || ""}`.trim() || "failed";
  }
}

// ---------------------------------------------------------------- main
let failed = false;
const report = (title, problems) => {
  if (problems.length) {
    failed = true;
    console.log(`FAIL ${title}`);
    for (const line of problems.format()) console.log(`  ${line}`);
  } else console.log(`ok   ${title}`);
};

const metrics = sourceMetrics();
if (!composeSchemaValidator()) {
  console.log(`SKIP Compose schema: ${rel(path.join(sharedDir, "testdata/schemas/compose-spec.json"))} is absent (the other checks run)`);
}
{
  const problems = new Problems();
  const { compose, ctx } = loadCompose(problems);
  checked.commands = 0;
  checkCompose(compose, ctx, problems);
  report(`deploy/compose.yaml (${composeSchemaValidator() ? "Compose schema, " : ""}${Object.keys(compose.services ?? {}).length} services, health checks, depends_on, ${checked.commands} tandem command lines against --help, router and Prometheus names)`, problems);
  const grafana = new Problems();
  checkGrafana(ctx, metrics, grafana);
  report(`deploy/grafana (datasource, ${ctx.dashboards.length} dashboard(s), every queried metric registered in the sources: ${metrics.size} names)`, grafana);
}
for (const [name] of k8sBuilds()) {
  const problems = new Problems();
  checked.commands = 0;
  checkAllK8s(problems, undefined, name);
  report(`deploy/k8s/${name} (kustomize build, Kubernetes schemas, unknown fields, selectors, ports, probes, ${checked.commands} tandem command lines against --help)`, problems);
}
const docker = dockerComposeConfig();
if (docker === null) console.log("SKIP docker compose config: the docker client has no compose plugin here");
else report("docker compose config (all profiles)", Object.assign(new Problems(), { list: docker ? [{ file: "deploy/compose.yaml", where: "", message: docker }] : [] }));

// ---------------------------------------------------------------- negative checks
// Each mutates a copy and must produce a problem whose text matches `expect`.
const composeFile = path.join(deployDir, "compose.yaml");
const editText = (file, from, to) => {
  const text = fs.readFileSync(file, "utf8");
  if (!text.includes(from)) throw new Error(`negative check out of date: "${from}" not in ${rel(file)}`);
  return new Map([[file, text.replace(from, to)]]);
};
const composeCase = (mutate) => () => {
  const problems = new Problems();
  const { compose, ctx } = loadCompose(problems);
  mutate(compose, ctx);
  checkCompose(compose, ctx, problems);
  checkGrafana(ctx, metrics, problems);
  return problems;
};
const k8sCase = (only, overrides, mutate) => () => {
  const problems = new Problems();
  if (!mutate) { checkAllK8s(problems, overrides(), only); return problems; }
  const dir = k8sBuilds().find(([n]) => n === only)[1];
  const items = kustomizeBuild(dir, problems, undefined);
  mutate(items);
  checkK8sBuild(only, items, problems, { gpuExpected: /gpu/.test(only) });
  return problems;
};
const find = (items, kind, name) => items.find(({ obj }) => obj.kind === kind && obj.metadata.name === name).obj;
const schema = !!composeSchemaValidator();
const negatives = [
  schema && ["compose: an unknown top-level key", /Compose schema: .*additional properties \("servicez"\)/,
    composeCase((c) => { c.servicez = {}; })],
  schema && ["compose: ports as a string, not a list", /services\.router\.ports.*Compose schema: must be array/,
    composeCase((c) => { c.services.router.ports = "8000:8000"; })],
  ["compose: a health check through curl", /healthcheck\.test.*must be \["CMD", "tandem", "health"/,
    composeCase((c) => { c.services.decode.healthcheck.test = ["CMD", "curl", "-f", "http://127.0.0.1:9100/metrics"]; })],
  ["compose: a health check on another port than --port", /checks 127\.0\.0\.1:50099 but the daemon listens on --port 50052/,
    composeCase((c) => { c.services.decode.healthcheck.test = ["CMD", "tandem", "health", "--addr", "127.0.0.1:50099"]; })],
  ["compose: depends_on a service that does not exist", /depends on "prefil", which is not a service/,
    composeCase((c) => { c.services.router.depends_on.prefil = { condition: "service_healthy" }; })],
  ["compose: a gpu service depending on a cpu-only one", /"prefill-gpu" is active in profile gpu but "model" is not/,
    composeCase((c) => { c.services["prefill-gpu"].depends_on = { model: { condition: "service_completed_successfully" } }; })],
  ["compose: an unknown tandem flag", /unknown flag --no-such-flag: `tandem decode --help` does not list it/,
    composeCase((c) => { c.services.decode.command.push("--no-such-flag", "1"); })],
  ["compose: an unknown flag in the model service's shell script", /unknown flag --presets: `tandem mkmodel --help` does not list it/,
    composeCase((c) => { c.services.model.command[0] = c.services.model.command[0].replace("--preset", "--presets"); })],
  ["compose: a worker with a container_name", /container_name.*cannot be scaled/,
    composeCase((c) => { c.services.decode.container_name = "decode"; })],
  ["compose: the router resolving a name no service has", /"decoder" is no service or network alias in profile cpu/,
    composeCase((c) => { const cmd = c.services.router.command; cmd[cmd.indexOf("dns:decode:50052")] = "dns:decoder:50052"; })],
  ["compose: a colocated worker without a healthcheck", /services\.colocated: a tandem colocated service needs a healthcheck/,
    composeCase((c) => { delete c.services.colocated.healthcheck; delete c.services["router-colocated"].depends_on.colocated; })],
  ["compose: the colocated router resolving a name no service has", /--colocated dns:colocate:50053: "colocate" is no service or network alias in profile colocated/,
    composeCase((c) => { const cmd = c.services["router-colocated"].command; cmd[cmd.indexOf("dns:colocated:50053")] = "dns:colocate:50053"; })],
  ["compose: the colocated router on the decode port", /--colocated dns:colocated:50052: port 50052, but service colocated listens on --port 50053/,
    composeCase((c) => { const cmd = c.services["router-colocated"].command; cmd[cmd.indexOf("dns:colocated:50053")] = "dns:colocated:50052"; })],
  ["compose: a router with --prefill but no --decode", /services\.router-colocated\.command: --prefill without --decode/,
    composeCase((c) => { c.services["router-colocated"].command.push("--prefill", "dns:prefill:50051"); })],
  ["compose: a colocated worker no router lists", /services\.colocated: a colocated worker in profile colocated that no router of the profile lists/,
    composeCase((c) => { const cmd = c.services["router-colocated"].command; cmd.splice(cmd.indexOf("--colocated"), 2, "--prefill", "dns:prefill:50051", "--decode", "dns:decode:50052"); })],
  ["prometheus: colocated workers not scraped", /service colocated \(profile colocated\) is not scraped/,
    composeCase((c, ctx) => { ctx.prometheus.scrape_configs = ctx.prometheus.scrape_configs.filter((j) => j.job_name !== "colocated"); })],
  ["prometheus: a name no profile has", /"colocatd" is no service or alias in any profile/,
    composeCase((c, ctx) => { ctx.prometheus.scrape_configs.find((j) => j.job_name === "colocated").dns_sd_configs[0].names = ["colocatd"]; })],
  ["prometheus: scraping another port than --metrics-port", /scrapes decode:9101, but service decode serves \/metrics on --metrics-port 9100/,
    composeCase((c, ctx) => { ctx.prometheus.scrape_configs.find((j) => j.job_name === "decode").dns_sd_configs[0].port = 9101; })],
  ["grafana: a dashboard querying a metric nobody registers", /metric tandem_made_up_seconds_count is registered nowhere/,
    composeCase((c, ctx) => { ctx.dashboards[0][1].panels[1].targets[0].expr = "rate(tandem_made_up_seconds_count[5m])"; })],
  ["k8s: replicas of the wrong type", /Kubernetes schema: \/spec\/replicas must be integer/,
    k8sCase("base", null, (items) => { find(items, "Deployment", "decode").spec.replicas = "two"; })],
  ["k8s: an unknown field", /containers\[0\]\.argz: unknown field/,
    k8sCase("base", null, (items) => { find(items, "Deployment", "prefill").spec.template.spec.containers[0].argz = []; })],
  ["k8s: a Service selector that matches nothing", /Service\/decode spec\.selector.*selects no workload's pods/,
    k8sCase("base", null, (items) => { find(items, "Service", "decode").spec.selector["app.kubernetes.io/component"] = "decoder"; })],
  ["k8s: a gRPC probe on a port the container lacks", /livenessProbe: port 50099 is not a port of the container/,
    k8sCase("base", null, (items) => { find(items, "Deployment", "prefill").spec.template.spec.containers[0].livenessProbe.grpc.port = 50099; })],
  ["k8s: an unknown tandem flag", /unknown flag --prefill-addrs: `tandem router --help` does not list it/,
    k8sCase("base", null, (items) => { find(items, "Deployment", "router").spec.template.spec.containers[0].args.push("--prefill-addrs", "x:1"); })],
  ["k8s: a volumeMount of an undeclared volume", /volume "weights" is not declared/,
    k8sCase("base", null, (items) => { find(items, "Deployment", "decode").spec.template.spec.containers[0].volumeMounts[0].name = "weights"; })],
  ["k8s: a base change the gpu overlay's patch no longer fits", /op 0 \(test \/spec\/template\/spec\/initContainers\/0\/name\): test failed/,
    k8sCase("overlays/gpu", () => editText(path.join(k8sDir, "base", "decode.yaml"), "initContainers:\n        - name: model", "initContainers:\n        - name: fetch-model"))],
  ["k8s: a NetworkPolicy opening a port the workers lack", /NetworkPolicy\/tandem-workers spec\.ingress\[0\]\.ports\[0\]: port grpcs is no container port/,
    k8sCase("base", null, (items) => { find(items, "NetworkPolicy", "tandem-workers").spec.ingress[0].ports[0].port = "grpcs"; })],
  ["k8s: the router pointed at a Service that is not headless", /Service\/prefill spec\.clusterIP: must be None/,
    k8sCase("base", null, (items) => { delete find(items, "Service", "prefill").spec.clusterIP; })],
].filter(Boolean);
let negativeFailures = 0;
for (const [title, expect, check] of negatives) {
  let problems;
  try { problems = check(); } catch (e) { problems = Object.assign(new Problems(), { list: [{ file: "", where: "", message: `threw: ${e.message}` }] }); }
  const lines = problems.format();
  if (lines.some((l) => expect.test(l))) console.log(`ok   rejected: ${title}`);
  else {
    negativeFailures++;
    console.log(`FAIL not rejected as expected: ${title} (wanted ${expect})`);
    for (const l of lines) console.log(`  got: ${l}`);
  }
}
if (negativeFailures) failed = true;
console.log(failed ? "deploy validation FAILED" : `deploy validation passed (${negatives.length} negative checks rejected)`);
process.exit(failed ? 1 : 0);
