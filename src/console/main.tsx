/**
 * The Sinew console: overview, graph, detail pages, traces and config of the running mesh,
 * with actions that write Istio config. Everything is reachable by keyboard: links and
 * buttons in document order, dialogs are native <dialog>s (Esc closes), and the graph has a
 * list of its nodes and edges beside the drawing.
 */
import { render } from 'preact';
import './styles.css';
import { useRoute } from './router.js';
import { OverviewPage } from './pages/overview.js';
import { GraphPage } from './pages/graph.js';
import { DetailPage } from './pages/detail.js';
import { TracesPage, TracePage } from './pages/traces.js';
import { ConfigPage } from './pages/config.js';

const NAV: [string, string][] = [
  ['overview', 'Overview'],
  ['graph', 'Graph'],
  ['traces', 'Traces'],
  ['config', 'Config'],
];

function App() {
  const route = useRoute();
  const [page = 'overview', ...rest] = route.path;
  let body;
  switch (page) {
    case 'graph':
      body = <GraphPage params={route.params} />;
      break;
    case 'service':
    case 'workload':
    case 'app':
      body = <DetailPage kind={page} namespace={rest[0] ?? 'default'} name={rest[1] ?? ''} params={route.params} />;
      break;
    case 'traces':
      body = rest[0] ? <TracePage id={rest[0]} /> : <TracesPage params={route.params} />;
      break;
    case 'config':
      body = <ConfigPage params={route.params} />;
      break;
    default:
      body = <OverviewPage />;
  }
  const section = ['service', 'workload', 'app'].includes(page) ? 'graph' : page;
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Sinew</span>
        <nav aria-label="Sections">
          {NAV.map(([path, label]) => (
            <a href={`#/${path}`} aria-current={section === path ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        {body}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
