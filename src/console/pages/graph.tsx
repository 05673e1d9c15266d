/**
 * The traffic graph (Kiali's graph page): cytoscape draws it left to right; a refresh keeps the
 * nodes where they were and lays out again only when nodes come or go. Beside it, the panel of
 * what is selected and, for keyboard and screen-reader users, every node and edge as a button.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import cytoscape, { type Core, type ElementDefinition } from 'cytoscape';
import { GRAPH_TYPES, GRAPH_WINDOWS, type Graph, type GraphEdge, type GraphNode, type GraphType, type NodeBadges } from '../../api/console.js';
import { consoleApi } from '../api.js';
import { HealthBadge, ms, percent, rate } from '../components/health.js';
import { useJson } from '../hooks.js';
import { href } from '../router.js';

const TYPE_LABELS: Record<GraphType, string> = { app: 'App graph', versionedApp: 'Versioned app graph', service: 'Service graph', workload: 'Workload graph' };
const HEALTH_COLORS = { healthy: '#2e7d32', degraded: '#b26a00', failure: '#c62828', na: '#8a929c' };
const SHAPES: Record<GraphNode['kind'], string> = {
  app: 'round-rectangle',
  versionedApp: 'round-rectangle',
  workload: 'ellipse',
  service: 'triangle',
  serviceEntry: 'diamond',
  gateway: 'hexagon',
  unknown: 'octagon',
};

export function badgeText(b: NodeBadges): string[] {
  const out: string[] = [];
  if (b.suspended) out.push('suspended');
  if (b.virtualService) out.push('routing');
  if (b.faultInjection) out.push('fault');
  if (b.timeout) out.push('timeout');
  if (b.retries) out.push('retries');
  if (b.circuitBreaker) out.push('circuit breaker');
  if (b.mirror) out.push('mirror');
  return out;
}

const edgeLabel = (e: GraphEdge) =>
  e.protocol === 'tcp' ? `${rate(e.rate)} B/s` : `${rate(e.rate)} rps${e.errorPercent > 0 ? ` ${percent(e.errorPercent)} err` : ''}${e.sharePercent < 100 ? ` · ${e.sharePercent.toFixed(0)}%` : ''}`;

export const nodeName = (n: GraphNode) => `${n.label}${n.namespace ? ` (${n.namespace})` : ''}`;

export function GraphPage({ params }: { params: URLSearchParams }) {
  const type = (GRAPH_TYPES.includes(params.get('type') as GraphType) ? params.get('type') : 'versionedApp') as GraphType;
  const window = Number(params.get('window') ?? 60);
  const refresh = params.get('refresh') ?? '10';
  const namespace = params.get('namespace') ?? '';
  const path = consoleApi(`graph?type=${type}&window=${window}${namespace ? `&namespace=${encodeURIComponent(namespace)}` : ''}`);
  const { data, error } = useJson<Graph>(path, refresh === 'off' ? undefined : Number(refresh) * 1000);
  const [selected, setSelected] = useState<string | undefined>(params.get('select') ?? undefined);
  const go = (changes: Record<string, string | number | undefined>) => {
    location.hash = href('graph', { type, window, refresh, namespace, ...changes });
  };
  const selectedNode = data?.nodes.find((n) => n.id === selected);
  const selectedEdge = data?.edges.find((e) => e.id === selected);
  const byId = useMemo(() => new Map((data?.nodes ?? []).map((n) => [n.id, n])), [data]);

  return (
    <>
      <h1>{TYPE_LABELS[type]}</h1>
      <div class="toolbar" role="group" aria-label="Graph settings">
        <label>
          Graph
          <select value={type} onChange={(e) => go({ type: (e.target as HTMLSelectElement).value })}>
            {GRAPH_TYPES.map((t) => (
              <option value={t}>{TYPE_LABELS[t]}</option>
            ))}
          </select>
        </label>
        <label>
          Window
          <select value={String(window)} onChange={(e) => go({ window: (e.target as HTMLSelectElement).value })}>
            {GRAPH_WINDOWS.map((w) => (
              <option value={String(w)}>Last {w / 60} min</option>
            ))}
          </select>
        </label>
        <label>
          Refresh
          <select value={refresh} onChange={(e) => go({ refresh: (e.target as HTMLSelectElement).value })}>
            <option value="10">Every 10 s</option>
            <option value="off">Off</option>
          </select>
        </label>
        <label>
          Namespace
          <input value={namespace} placeholder="all" onChange={(e) => go({ namespace: (e.target as HTMLInputElement).value })} />
        </label>
        {data && (
          <span class="muted" role="status">
            {data.nodes.length} nodes, {data.edges.length} edges · {data.scrape.targets} proxies scraped
          </span>
        )}
      </div>
      {error && <p class="errors" role="alert">{error}</p>}
      <div class="graph-layout">
        <div class="graph-canvas">{data && <GraphCanvas graph={data} selected={selected} onSelect={setSelected} />}</div>
        <aside class="side" aria-label="Selection">
          {selectedNode && <NodePanel node={selectedNode} />}
          {selectedEdge && <EdgePanel edge={selectedEdge} source={byId.get(selectedEdge.source)} target={byId.get(selectedEdge.target)} />}
          {!selectedNode && !selectedEdge && <p class="muted">Select a node or an edge, in the drawing or in the list below.</p>}
          {data && <ElementList graph={data} byId={byId} selected={selected} onSelect={setSelected} />}
        </aside>
      </div>
    </>
  );
}

function GraphCanvas({ graph, selected, onSelect }: { graph: Graph; selected?: string; onSelect: (id: string | undefined) => void }) {
  const box = useRef<HTMLDivElement>(null);
  const cy = useRef<Core>();
  const layoutKey = useRef('');
  useEffect(() => {
    const instance = cytoscape({
      container: box.current,
      wheelSensitivity: 0.3,
      textureOnViewport: true,
      hideEdgesOnViewport: true,
      minZoom: 0.05,
      maxZoom: 3,
      style: [
        {
          selector: 'node',
          style: {
            shape: 'data(shape)' as never,
            'background-color': '#fff',
            'border-width': 3,
            'border-color': 'data(color)',
            label: 'data(text)',
            'font-size': 11,
            'text-valign': 'bottom',
            'text-margin-y': 4,
            'text-wrap': 'wrap',
            'min-zoomed-font-size': 7,
            width: 28,
            height: 28,
          },
        },
        { selector: 'node:selected', style: { 'border-color': '#0b62c4', 'border-width': 5 } },
        {
          selector: 'edge',
          style: {
            width: 'data(width)',
            'line-color': 'data(color)',
            'target-arrow-color': 'data(color)',
            'target-arrow-shape': 'triangle',
            'curve-style': 'bezier',
            label: 'data(text)',
            'font-size': 9,
            'text-rotation': 'autorotate',
            'text-background-color': '#fff',
            'text-background-opacity': 0.8,
            'min-zoomed-font-size': 8,
          },
        },
        { selector: 'edge[protocol = "tcp"]', style: { 'line-style': 'dashed' } },
        { selector: 'edge:selected', style: { 'line-color': '#0b62c4', 'target-arrow-color': '#0b62c4', width: 4 } },
      ],
    });
    instance.on('tap', (e) => onSelect(e.target === instance ? undefined : (e.target.id() as string)));
    cy.current = instance;
    return () => instance.destroy();
  }, []);

  useEffect(() => {
    const c = cy.current;
    if (!c) return;
    const elements: ElementDefinition[] = [
      ...graph.nodes.map((n) => ({
        group: 'nodes' as const,
        data: { id: n.id, shape: SHAPES[n.kind], color: HEALTH_COLORS[n.health], text: [n.label, ...badgeText(n.badges).map((b) => `[${b}]`)].join('\n') },
      })),
      ...graph.edges.map((e) => ({
        group: 'edges' as const,
        data: {
          id: e.id,
          source: e.source,
          target: e.target,
          protocol: e.protocol,
          text: edgeLabel(e),
          color: e.errorPercent >= 20 ? '#c62828' : e.errorPercent >= 0.1 ? '#b26a00' : e.protocol === 'tcp' ? '#3f6fb5' : '#6b7785',
          width: Math.min(8, 1.5 + Math.log10(1 + e.rate)),
        },
      })),
    ];
    const wanted = new Set(elements.map((e) => e.data.id!));
    c.batch(() => {
      c.elements().forEach((el) => {
        if (!wanted.has(el.id())) el.remove();
      });
      for (const def of elements) {
        const existing = c.getElementById(def.data.id!);
        if (existing.nonempty()) existing.data(def.data);
        else c.add(def);
      }
    });
    const key = [...wanted].sort().join(',');
    if (key !== layoutKey.current) {
      layoutKey.current = key;
      const roots = c.nodes().filter((n) => n.indegree(false) === 0);
      c.layout({
        name: 'breadthfirst',
        directed: true,
        roots: roots.nonempty() ? roots : undefined,
        spacingFactor: graph.nodes.length > 100 ? 0.6 : 1.2,
        animate: false,
        // Left to right, like Kiali's dagre layout: breadthfirst lays out top-down.
        transform: (_node: unknown, pos: { x: number; y: number }) => ({ x: pos.y * 2, y: pos.x }),
      } as never).run();
      c.fit(undefined, 30);
    }
  }, [graph]);

  useEffect(() => {
    const c = cy.current;
    if (!c) return;
    c.elements().unselect();
    if (selected) c.getElementById(selected).select();
  }, [selected, graph]);

  // Keyboard: arrows pan, + and - zoom, 0 fits the whole graph.
  const onKey = (e: KeyboardEvent) => {
    const c = cy.current;
    if (!c) return;
    const pan: Record<string, [number, number]> = { ArrowLeft: [60, 0], ArrowRight: [-60, 0], ArrowUp: [0, 60], ArrowDown: [0, -60] };
    if (pan[e.key]) c.panBy({ x: pan[e.key][0], y: pan[e.key][1] });
    else if (e.key === '+' || e.key === '=') c.zoom({ level: c.zoom() * 1.25, renderedPosition: { x: c.width() / 2, y: c.height() / 2 } });
    else if (e.key === '-') c.zoom({ level: c.zoom() / 1.25, renderedPosition: { x: c.width() / 2, y: c.height() / 2 } });
    else if (e.key === '0') c.fit(undefined, 30);
    else return;
    e.preventDefault();
  };
  return (
    <div
      ref={box}
      style="position:absolute;inset:0"
      tabIndex={0}
      role="img"
      onKeyDown={onKey}
      aria-label={`Traffic graph: ${graph.nodes.length} nodes, ${graph.edges.length} edges. Arrow keys pan, plus and minus zoom, 0 fits. The list beside it holds each node and edge.`}
    />
  );
}

const detailHref = (n: GraphNode) =>
  n.kind === 'service' ? `#/service/${n.namespace}/${n.service}` : n.kind === 'workload' || n.kind === 'gateway' ? `#/workload/${n.namespace}/${n.workload}` : n.app ? `#/app/${n.namespace}/${n.app}` : undefined;

/** The trace-store service name of a node (`<app>.<namespace>`), for workload-side nodes. */
const traceService = (n: GraphNode | undefined) => (n && n.app && n.kind !== 'service' && n.kind !== 'serviceEntry' && n.kind !== 'unknown' ? `${n.app}.${n.namespace}` : undefined);
const serviceHost = (n: GraphNode | undefined) => (n && (n.kind === 'service' || n.kind === 'serviceEntry') && n.service ? (n.kind === 'service' ? `${n.service}.${n.namespace}.svc.cluster.local` : n.service) : undefined);

function NodePanel({ node }: { node: GraphNode }) {
  const badges = badgeText(node.badges);
  const link = detailHref(node);
  const traces = traceService(node) ?? (node.kind === 'service' ? `${node.service}.${node.namespace}` : undefined);
  return (
    <section aria-label={`Node ${nodeName(node)}`}>
      <h2>{nodeName(node)}</h2>
      <p>
        {node.kind} · <HealthBadge health={node.health} />
      </p>
      <table>
        <tbody>
          <tr><th>Inbound</th><td>{rate(node.inboundRate)} rps</td></tr>
          <tr><th>Errors</th><td>{percent(node.errorPercent)}</td></tr>
          {badges.length > 0 && <tr><th>Config</th><td>{badges.map((b) => <span class="badge">{b}</span>)}</td></tr>}
          {node.badges.virtualService && <tr><th>VirtualService</th><td>{node.badges.virtualService.join(', ')}</td></tr>}
        </tbody>
      </table>
      <p class="row">
        {link && <a href={link}>Details{node.kind === 'service' ? ' and actions' : ''}</a>}
        {traces && <a href={href('traces', { service: traces })}>Traces</a>}
      </p>
    </section>
  );
}

function EdgePanel({ edge, source, target }: { edge: GraphEdge; source?: GraphNode; target?: GraphNode }) {
  const from = traceService(source) ?? (source?.kind === 'service' ? `${source.service}.${source.namespace}` : undefined);
  const to = traceService(target);
  const host = serviceHost(target) ?? serviceHost(source);
  return (
    <section aria-label="Edge">
      <h2>
        {source ? nodeName(source) : edge.source} → {target ? nodeName(target) : edge.target}
      </h2>
      <table>
        <tbody>
          <tr><th>Protocol</th><td>{edge.protocol}</td></tr>
          <tr><th>Rate</th><td>{rate(edge.rate)} {edge.protocol === 'tcp' ? 'bytes/s' : 'req/s'}</td></tr>
          {edge.protocol !== 'tcp' && <tr><th>Errors</th><td>{percent(edge.errorPercent)}</td></tr>}
          <tr><th>Share of caller</th><td>{percent(edge.sharePercent)}</td></tr>
          {edge.protocol !== 'tcp' && <tr><th>Latency</th><td>p50 {ms(edge.p50)} · p95 {ms(edge.p95)} · p99 {ms(edge.p99)}</td></tr>}
          {edge.responses && <tr><th>Responses</th><td>{Object.entries(edge.responses).map(([code, n]) => `${code}: ${n}`).join(', ')}</td></tr>}
        </tbody>
      </table>
      {edge.protocol !== 'tcp' && (
        <p>
          <a href={href('traces', { from: source?.kind === 'service' ? undefined : from, to: target?.kind === 'service' ? undefined : to, host })}>Traces of this edge</a>
        </p>
      )}
    </section>
  );
}

function ElementList({ graph, byId, selected, onSelect }: { graph: Graph; byId: Map<string, GraphNode>; selected?: string; onSelect: (id: string) => void }) {
  return (
    <details open={graph.nodes.length <= 60}>
      <summary>Nodes and edges</summary>
      <h3>Nodes</h3>
      <ul class="element-list" aria-label="Nodes">
        {graph.nodes.map((n) => (
          <li data-node={n.id}>
            <button type="button" aria-pressed={selected === n.id} onClick={() => onSelect(n.id)}>
              {nodeName(n)} · {n.kind} · {n.health}
            </button>
          </li>
        ))}
      </ul>
      <h3>Edges</h3>
      <ul class="element-list" aria-label="Edges">
        {graph.edges.map((e) => {
          const s = byId.get(e.source);
          const t = byId.get(e.target);
          return (
            <li data-edge={e.id}>
              <button type="button" aria-pressed={selected === e.id} onClick={() => onSelect(e.id)}>
                {s ? nodeName(s) : e.source} → {t ? nodeName(t) : e.target} · {edgeLabel(e)}
              </button>
            </li>
          );
        })}
      </ul>
    </details>
  );
}
