// The fleet packaging in deploy/ against the code: every safe_docker_prune_* metric (and label) the alert
// rules and the Grafana dashboard query is one renderMetrics really writes; the dashboard is Grafana JSON
// with a Prometheus data-source variable; the Kubernetes manifests' container args pass the command's own
// flag parser and input validation; and promtool (Debian's prometheus package) checks the rules and runs
// their unit tests. promtool is needed only here: without it this part is skipped with the reason in its
// name, and with SDP_REQUIRE_DOCKER=1 (CI) a missing promtool fails the run instead.
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import {
  accessSync,
  constants,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { parseCommandLine } from '../src/flags';
import { readInputs } from '../src/policy/inputs';
import { renderMetrics, type MetricsPass } from '../src/report/metrics';

// A real YAML parser, from the js-yaml package eslint already brings (as docs.test.ts uses it).
const yaml = createRequire(__filename)('js-yaml') as {
  load(text: string): unknown;
  loadAll(text: string): unknown[];
};

const root = path.resolve(__dirname, '..');
const deploy = path.join(root, 'deploy');
const read = (file: string) => readFileSync(path.join(deploy, file), 'utf8');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };

/** A pass with every field set, so that every metric renderMetrics can write is written. */
const fullPass: MetricsPass = {
  daemon: 'unix:///var/run/docker.sock',
  mode: 'prune',
  ok: true,
  endedMs: 1_700_000_000_000,
  durationMs: 12_345,
  removed: { images: 4, containers: 1, networks: 1, volumes: 1 },
  keptImages: 9,
  estimatedBytes: 1000,
  estimatedBytesLow: 900,
  estimatedBytesHigh: 1100,
  reclaimedBytes: 950,
  diskFreeBefore: 1e9,
  diskFreeAfter: 2e9,
  inodesFreeBefore: 1e5,
  inodesFreeAfter: 2e5,
  budgetMet: true,
  budgetShortfallBytes: 0,
  secondsToFull: 32_400,
  secondsToInodesFull: Infinity,
  forecastSamples: 5,
  refetchedImages: 2,
  refetchedBytes: 3e9,
  unaccountedBytes: 2e9,
};

/** Each metric renderMetrics writes, with every label name and the values each label takes. */
function written(): Map<string, Map<string, Set<string>>> {
  const metrics = new Map<string, Map<string, Set<string>>>();
  for (const pass of [fullPass, { ...fullPass, mode: 'report', ok: false, budgetMet: false }]) {
    for (const line of renderMetrics(pass).split('\n')) {
      const m = /^([a-z_]+)\{(.*)\} \S+$/.exec(line);
      if (!m) continue;
      const labels = metrics.get(m[1]) ?? new Map<string, Set<string>>();
      for (const [, name, value] of m[2].matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) {
        labels.set(name, (labels.get(name) ?? new Set()).add(value));
      }
      metrics.set(m[1], labels);
    }
  }
  return metrics;
}

/** Labels Prometheus adds to a textfile-collector metric when it scrapes node_exporter. */
const SCRAPE_LABELS = ['instance', 'job'];

/**
 * Every `safe_docker_prune_*` selector in a PromQL expression: its metric name and its matchers
 * (`when="after"`, `daemon=~"$daemon"`).
 */
function selectors(
  expr: string,
): { name: string; matchers: { label: string; op: string; value: string }[] }[] {
  return [...expr.matchAll(/\b(safe_docker_prune_[a-z_]+)\b(\{([^}]*)\})?/g)].map((m) => ({
    name: m[1],
    matchers: [...(m[3] ?? '').matchAll(/([a-z_]+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)].map((x) => ({
      label: x[1],
      op: x[2],
      value: x[3],
    })),
  }));
}

/** Problems of one expression against what renderMetrics writes ([] when it asks only for real series). */
function problems(expr: string): string[] {
  const metrics = written();
  const found: string[] = [];
  for (const { name, matchers } of selectors(expr)) {
    const labels = metrics.get(name);
    if (!labels) {
      found.push(`${name} is not a metric renderMetrics writes`);
      continue;
    }
    for (const { label, op, value } of matchers) {
      if (SCRAPE_LABELS.includes(label)) continue;
      const values = labels.get(label);
      if (!values) found.push(`${name} has no label ${label}`);
      else if (op === '=' && !values.has(value)) found.push(`${name}{${label}="${value}"} is never written`);
    }
  }
  return found;
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules = (
  yaml.load(read('prometheus/safe-docker-prune.rules.yml')) as { groups: { rules: Rule[] }[] }
).groups.flatMap((g) => g.rules);

describe('the metric checker itself', () => {
  it('knows every metric and label renderMetrics writes', () => {
    const metrics = written();
    expect(metrics.get('safe_docker_prune_disk_free_bytes')?.get('when')).toEqual(
      new Set(['before', 'after']),
    );
    expect(metrics.get('safe_docker_prune_removed')?.get('kind')).toEqual(
      new Set(['images', 'containers', 'networks', 'volumes']),
    );
    expect(metrics.has('safe_docker_prune_last_success_timestamp_seconds')).toBe(true);
  });

  it('flags a metric, a label and a label value that are never written', () => {
    expect(problems('safe_docker_prune_reclaimed_bytes{instance=~"$instance"} > 0')).toEqual([]);
    expect(problems('safe_docker_prune_freed_bytes > 0')).toEqual([
      'safe_docker_prune_freed_bytes is not a metric renderMetrics writes',
    ]);
    expect(problems('safe_docker_prune_budget_met{mode="prune"}')).toEqual([
      'safe_docker_prune_budget_met has no label mode',
    ]);
    expect(problems('safe_docker_prune_disk_free_bytes{when="during"}')).toEqual([
      'safe_docker_prune_disk_free_bytes{when="during"} is never written',
    ]);
  });
});

describe('Prometheus alert rules (deploy/prometheus)', () => {
  it('query only metrics and labels the command writes', () => {
    expect(rules.length).toBeGreaterThan(0);
    for (const rule of rules)
      expect({ alert: rule.alert, problems: problems(rule.expr) }).toEqual({
        alert: rule.alert,
        problems: [],
      });
  });

  it('cover the alerts a fleet needs, each with a severity, a summary and a description', () => {
    const byName = new Map(rules.map((r) => [r.alert, r]));
    const uses = (alert: string, metric: string) => expect(byName.get(alert)?.expr).toContain(metric);
    uses('SafeDockerPruneFailed', 'safe_docker_prune_success');
    uses('SafeDockerPruneNoRecentSuccess', 'safe_docker_prune_last_success_timestamp_seconds');
    uses('SafeDockerPruneBudgetNotMet', 'safe_docker_prune_budget_met');
    uses('SafeDockerPruneBudgetShortfall', 'safe_docker_prune_budget_shortfall_bytes');
    uses('SafeDockerPruneDiskFreeLow', 'safe_docker_prune_disk_free_bytes');
    uses('SafeDockerPruneDiskFillingUp', 'predict_linear(node_filesystem_avail_bytes');
    uses('SafeDockerPruneDiskFullSoon', 'safe_docker_prune_disk_full_seconds');
    uses('SafeDockerPruneRefetching', 'safe_docker_prune_refetched_bytes');
    for (const rule of rules) {
      expect([rule.alert, rule.labels?.severity]).toEqual([
        rule.alert,
        expect.stringMatching(/^(warning|critical)$/),
      ]);
      expect(rule.annotations?.summary).toBeTruthy();
      expect(rule.annotations?.description).toBeTruthy();
    }
  });
});

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string; datasource?: { uid?: string } }[];
  panels?: Panel[];
}
const dashboard = JSON.parse(read('grafana/safe-docker-prune.json')) as {
  title: string;
  uid: string;
  schemaVersion: number;
  templating: { list: { name: string; type: string; query: unknown }[] };
  panels: Panel[];
};
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);

describe('Grafana dashboard (deploy/grafana)', () => {
  it('is a dashboard with a Prometheus data-source variable that every query uses', () => {
    expect(dashboard.uid).toBe('safe-docker-prune');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(30);
    expect(dashboard.templating.list).toContainEqual(
      expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }),
    );
    for (const panel of panels)
      for (const target of panel.targets ?? []) expect(target.datasource?.uid).toBe('${datasource}');
  });

  it('queries only metrics and labels the command writes', () => {
    const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    const variables = dashboard.templating.list.map((v) =>
      typeof v.query === 'string' ? v.query : ((v.query as { query?: string })?.query ?? ''),
    );
    expect(exprs.length).toBeGreaterThan(10);
    for (const expr of [...exprs, ...variables])
      expect({ expr, problems: problems(expr) }).toEqual({ expr, problems: [] });
  });

  it('has the panels an operator looks for', () => {
    const titles = panels.map((p) => p.title);
    for (const title of [
      'Bytes reclaimed',
      'Estimate vs reclaimed',
      'Disk free before / after',
      'Images removed / kept',
      'Run status and duration',
      'Budget met',
      'Time to full (forecast)',
      'Re-fetched and unaccounted',
      'Hosts',
    ])
      expect(titles).toContain(title);
    expect(panels.find((p) => p.title === 'Hosts')?.type).toBe('table');
  });
});

interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  env?: { name: string; value?: string }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  securityContext?: Record<string, unknown>;
  resources?: { limits?: Record<string, string> };
}
interface PodSpec {
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; supplementalGroups?: number[] };
  containers: Container[];
  volumes: { name: string; hostPath?: { path: string }; emptyDir?: object }[];
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec?: { template?: { spec: PodSpec }; jobTemplate?: { spec: { template: { spec: PodSpec } } } };
  resources?: string[];
}
const kubeDir = path.join(deploy, 'kubernetes');
const manifests = readdirSync(kubeDir)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((file) =>
    yaml
      .loadAll(readFileSync(path.join(kubeDir, file), 'utf8'))
      .map((doc) => ({ file, doc: doc as Manifest })),
  );
const podOf = (m: Manifest) => m.spec?.template?.spec ?? m.spec?.jobTemplate?.spec.template.spec;

/** The inputs a container's args and env give the command, through its own parser and validation. */
function commandOf(container: Container) {
  const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? '']));
  const cl = parseCommandLine(container.args ?? [], env);
  const inputs = readInputs((name) => cl.values.get(name) ?? '', env);
  return { cl, inputs };
}

describe('Kubernetes manifests (deploy/kubernetes)', () => {
  const workloads = manifests.filter((m) => podOf(m.doc));

  it('hold a DaemonSet and a CronJob, and kustomization.yaml lists files that exist', () => {
    expect(workloads.map((m) => m.doc.kind).sort()).toEqual(['CronJob', 'DaemonSet']);
    const kustomization = manifests.find((m) => m.doc.kind === 'Kustomization')?.doc;
    for (const file of kustomization?.resources ?? []) expect(readdirSync(kubeDir)).toContain(file);
    expect(kustomization?.resources).toContain('daemonset.yaml');
  });

  it('run args the command accepts: report mode, metrics into the textfile directory, the node socket', () => {
    for (const { doc } of workloads) {
      const pod = podOf(doc)!;
      const [container] = pod.containers;
      expect(container.image).toBe(`safe-docker-prune:${pkg.version}`);
      expect(container.command).toBeUndefined(); // the image's entrypoint is the command
      const { cl, inputs } = commandOf(container);
      expect(cl.warnings).toEqual([]);
      expect(inputs.mode).toBe('report');
      expect(inputs.dockerHost).toBe('unix:///var/run/docker.sock');
      const mount = (volume: string) => container.volumeMounts?.find((v) => v.name === volume);
      const hostPath = (volume: string) => pod.volumes.find((v) => v.name === volume)?.hostPath?.path;
      expect(path.dirname(cl.metricsFile!)).toBe(mount('textfile')?.mountPath);
      expect(hostPath('textfile')).toBe('/var/lib/node_exporter/textfile_collector');
      expect(mount('docker-socket')?.mountPath).toBe('/var/run/docker.sock');
      expect(hostPath('docker-socket')).toBe('/var/run/docker.sock');
      expect(mount('docker-data-root')).toEqual(expect.objectContaining({ readOnly: true }));
      if (doc.kind === 'DaemonSet') expect(cl.everyMs).toBeGreaterThan(0);
      else expect(cl.everyMs).toBeUndefined();
    }
  });

  it('run as a non-root user in the socket group, with resource limits', () => {
    for (const { doc } of workloads) {
      const pod = podOf(doc)!;
      expect(pod.securityContext?.runAsNonRoot).toBe(true);
      expect(pod.securityContext?.runAsUser).toBeGreaterThan(0);
      expect(pod.securityContext?.supplementalGroups?.length).toBe(1);
      const [container] = pod.containers;
      expect(container.securityContext).toEqual(
        expect.objectContaining({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true }),
      );
      expect(container.resources?.limits).toEqual(
        expect.objectContaining({ cpu: expect.any(String), memory: expect.any(String) }),
      );
    }
  });

  it('show prune mode in a comment that the command accepts too', () => {
    for (const { file, doc } of workloads) {
      const text = readFileSync(path.join(kubeDir, file), 'utf8');
      const commented = [...text.matchAll(/^\s*#\s+- (--[a-z-]+=\S+)$/gm)].map((m) => m[1]);
      expect(commented).toContain('--mode=prune');
      const [container] = podOf(doc)!.containers;
      const args = [...(container.args ?? []).filter((a) => !a.startsWith('--mode=')), ...commented];
      expect(commandOf({ ...container, args }).inputs.mode).toBe('prune');
    }
  });

  it('fail this test when an arg is not one the command takes', () => {
    const [container] = podOf(workloads[0].doc)!.containers;
    expect(() => commandOf({ ...container, args: [...(container.args ?? []), '--keep-recnt=3'] })).toThrow(
      /unknown option --keep-recnt; did you mean --keep-recent\?/,
    );
    expect(() => commandOf({ ...container, args: [...(container.args ?? []), '--older-than=soon'] })).toThrow(
      /older-than/,
    );
  });
});

/** promtool on PATH (Debian's prometheus package), or undefined. */
function findPromtool(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/bin', '/usr/local/bin'].filter(Boolean);
  for (const dir of dirs) {
    try {
      accessSync(path.join(dir, 'promtool'), constants.X_OK);
      return path.join(dir, 'promtool');
    } catch {
      // not here
    }
  }
  return undefined;
}

const promtool = findPromtool();
if (!promtool && process.env.SDP_REQUIRE_DOCKER === '1') {
  describe('promtool', () => {
    it('is installed (SDP_REQUIRE_DOCKER=1 requires it: apt-get install prometheus)', () => {
      expect(promtool).toBeDefined();
    });
  });
} else {
  const describePromtool = promtool
    ? describe
    : (name: string, fn: () => void) =>
        describe.skip(`${name} [skipped: promtool missing; apt-get install prometheus]`, fn);
  describePromtool('promtool on the alert rules', () => {
    const run = (args: string[]) =>
      spawnSync(promtool!, args, { cwd: path.join(deploy, 'prometheus'), encoding: 'utf8' });

    it('checks the rules', () => {
      const r = run(['check', 'rules', 'safe-docker-prune.rules.yml']);
      expect({ code: r.status, out: r.stdout + r.stderr }).toEqual({
        code: 0,
        out: expect.stringContaining('SUCCESS'),
      });
    });

    it("parses every dashboard query as PromQL (as recording rules, the variables set to '.*')", () => {
      const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr.replace(/\$\w+/g, '.*')));
      const dir = mkdtempSync(path.join(tmpdir(), 'sdp-dashboard-'));
      try {
        const file = path.join(dir, 'dashboard.rules.yml');
        const records = exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr }));
        writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules: records }] }));
        const r = run(['check', 'rules', file]);
        expect({ code: r.status, out: r.stdout + r.stderr }).toEqual({
          code: 0,
          out: expect.stringContaining(`SUCCESS: ${exprs.length} rules found`),
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('passes the rules unit tests: each alert fires where it should and nowhere else', () => {
      const r = run(['test', 'rules', 'safe-docker-prune.rules.test.yml']);
      expect({ code: r.status, out: r.stdout + r.stderr }).toEqual({
        code: 0,
        out: expect.stringContaining('SUCCESS'),
      });
    });
  });
}
