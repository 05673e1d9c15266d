/**
 * The service actions (Kiali's wizards): a form, then a preview of the VirtualService and
 * DestinationRule the action will write with their validation, then Apply, which posts them to
 * the config API (`sinew apply`'s path). Actions in force are listed with Undo.
 */
import { useRef, useState } from 'preact/hooks';
import type { ActionKind, ActionPreview, ActionRecord, ActionRequest, UndoPlan } from '../../api/console.js';
import { ApiError, applyYaml, consoleApi, deleteYaml, postJson } from '../api.js';
import { useJson } from '../hooks.js';
import { Diagnostics } from './diagnostics.js';

const TITLES: Record<ActionKind, string> = {
  'weighted-routing': 'Weighted routing',
  'matching-routing': 'Matching routing',
  suspend: 'Suspend traffic',
  resume: 'Resume traffic',
  'fault-injection': 'Fault injection',
  timeouts: 'Timeouts and retries',
  'circuit-breaker': 'Circuit breaker',
};

export function ServiceActions({ namespace, service, versions, suspended, onChange }: { namespace: string; service: string; versions: string[]; suspended: boolean; onChange: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [action, setAction] = useState<ActionKind | undefined>();
  // Bumped by every apply here, so the list of actions in force is read again.
  const [applied, setApplied] = useState(0);
  const open = (a: ActionKind) => {
    setAction(a);
    dialog.current?.showModal();
  };
  const kinds: ActionKind[] = ['weighted-routing', 'matching-routing', suspended ? 'resume' : 'suspend', 'fault-injection', 'timeouts', 'circuit-breaker'];
  return (
    <section aria-labelledby="actions-title">
      <h2 id="actions-title">Actions</h2>
      <div class="row" role="group" aria-label="Actions">
        {kinds.map((k) => (
          <button type="button" class="secondary" onClick={() => open(k)}>
            {TITLES[k]}
          </button>
        ))}
      </div>
      <dialog ref={dialog} aria-labelledby="action-dialog-title" onClose={() => setAction(undefined)}>
        {action && (
          <ActionForm
            key={action}
            action={action}
            namespace={namespace}
            service={service}
            versions={versions}
            onClose={() => dialog.current?.close()}
            onApplied={() => {
              setApplied((n) => n + 1);
              onChange();
            }}
          />
        )}
      </dialog>
      <ActionsInForce namespace={namespace} service={service} onChange={onChange} refresh={applied} />
    </section>
  );
}

function ActionForm({ action, namespace, service, versions, onClose, onApplied }: { action: ActionKind; namespace: string; service: string; versions: string[]; onClose: () => void; onApplied: () => void }) {
  const [params, setParams] = useState<Record<string, string | boolean>>(() => initialParams(action, versions));
  const [preview, setPreview] = useState<ActionPreview | undefined>();
  const [error, setError] = useState<ApiError | Error | undefined>();
  const [applied, setApplied] = useState<string | undefined>();
  const set = (k: string, v: string | boolean) => {
    setParams({ ...params, [k]: v });
    setPreview(undefined);
    setApplied(undefined);
  };
  const field = (name: string, label: string, type = 'text', extra: Record<string, unknown> = {}) => (
    <label>
      {label}
      <input name={name} type={type} value={String(params[name] ?? '')} onInput={(e) => set(name, (e.target as HTMLInputElement).value)} {...extra} />
    </label>
  );
  const subsetSelect = (name: string, label: string) => (
    <label>
      {label}
      <select name={name} value={String(params[name] ?? '')} onChange={(e) => set(name, (e.target as HTMLSelectElement).value)}>
        {versions.map((v) => (
          <option value={v}>{v}</option>
        ))}
      </select>
    </label>
  );
  const doPreview = async () => {
    setError(undefined);
    try {
      setPreview(await postJson<ActionPreview>(consoleApi('actions/preview'), { action, namespace, service, params: toParams(action, params, versions) } satisfies ActionRequest));
    } catch (err) {
      setError(err as Error);
    }
  };
  const doApply = async () => {
    if (!preview) return;
    setError(undefined);
    try {
      const results: string[] = [];
      if (preview.yaml) results.push(...(await applyYaml(preview.yaml)).resources.map((r) => `${r.kind} ${r.name} ${r.result}`));
      if (preview.deleteYaml) results.push(...(await deleteYaml(preview.deleteYaml)).resources.map((r) => `${r.kind} ${r.name} ${r.result}`));
      setApplied(results.join(', '));
      onApplied();
    } catch (err) {
      setError(err as Error);
    }
  };
  return (
    <form method="dialog" onSubmit={(e) => e.preventDefault()}>
      <h2 id="action-dialog-title">
        {TITLES[action]}: {service}
      </h2>
      <div class="toolbar">
        {action === 'weighted-routing' && (
          <>
            {versions.map((v) => field(`weight:${v}`, `Weight of ${v} (%)`, 'number', { min: 0, max: 100 }))}
            <label>
              TCP
              <input type="checkbox" name="tcp" checked={!!params.tcp} onChange={(e) => set('tcp', (e.target as HTMLInputElement).checked)} />
            </label>
          </>
        )}
        {action === 'matching-routing' && (
          <>
            {field('header', 'Header name')}
            <label>
              Header match
              <select name="headerMatch" value={String(params.headerMatch)} onChange={(e) => set('headerMatch', (e.target as HTMLSelectElement).value)}>
                <option value="exact">exact</option>
                <option value="prefix">prefix</option>
                <option value="regex">regex</option>
              </select>
            </label>
            {field('headerValue', 'Header value')}
            {field('uriPrefix', 'URI prefix')}
            {field('method', 'Method')}
            {subsetSelect('subset', 'Route matches to')}
            {subsetSelect('defaultSubset', 'Route the rest to')}
          </>
        )}
        {action === 'fault-injection' && (
          <>
            {field('delayPercent', 'Delay: % of requests', 'number', { min: 0, max: 100 })}
            {field('fixedDelay', 'Delay: duration (e.g. 2s)')}
            {field('abortPercent', 'Abort: % of requests', 'number', { min: 0, max: 100 })}
            {field('httpStatus', 'Abort: HTTP status', 'number')}
          </>
        )}
        {action === 'timeouts' && (
          <>
            {field('timeout', 'Request timeout (e.g. 3s)')}
            {field('attempts', 'Retry attempts', 'number', { min: 0 })}
            {field('perTryTimeout', 'Per-try timeout (e.g. 1s)')}
            {field('retryOn', 'Retry on (e.g. 5xx,connect-failure)')}
          </>
        )}
        {action === 'circuit-breaker' && (
          <>
            {field('maxConnections', 'Max connections', 'number', { min: 1 })}
            {field('http1MaxPendingRequests', 'Max pending requests', 'number', { min: 1 })}
            {field('consecutive5xxErrors', 'Consecutive 5xx before ejection', 'number', { min: 1 })}
            {field('interval', 'Ejection sweep interval (e.g. 10s)')}
            {field('baseEjectionTime', 'Base ejection time (e.g. 30s)')}
            {field('maxEjectionPercent', 'Max ejected %', 'number', { min: 0, max: 100 })}
          </>
        )}
        {(action === 'suspend' || action === 'resume') && <p>{action === 'suspend' ? 'Every request to this service will be answered 503 by the caller\'s proxy (a 100% abort fault), until resumed.' : 'Restores the routing that was in force before the suspension.'}</p>}
      </div>
      <div class="row">
        <button type="button" onClick={doPreview}>
          Preview
        </button>
        <button type="button" onClick={doApply} disabled={!preview || !preview.validation.valid || !!applied}>
          Apply
        </button>
        <button type="button" class="secondary" onClick={onClose}>
          Close
        </button>
      </div>
      {error && (
        <div class="errors" role="alert">
          <p>{error.message}</p>
          {error instanceof ApiError && <Diagnostics diagnostics={error.diagnostics} />}
        </div>
      )}
      {preview && (
        <section aria-label="Preview">
          <p>
            <strong>{preview.summary}</strong>
          </p>
          {preview.validation.lines.length > 0 ? (
            <div class={preview.validation.valid ? 'ok' : 'errors'} role={preview.validation.valid ? 'status' : 'alert'}>
              <Diagnostics diagnostics={[...preview.validation.diagnostics, ...preview.validation.analysis]} />
            </div>
          ) : (
            <p class="ok" role="status">
              Valid: sinew validate and sinew analyze report nothing.
            </p>
          )}
          {preview.yaml && <pre aria-label="Manifests to apply">{preview.yaml}</pre>}
          {preview.deleteYaml && <pre aria-label="Manifests to delete">{preview.deleteYaml}</pre>}
        </section>
      )}
      {applied && (
        <p class="ok" role="status">
          Applied: {applied}
        </p>
      )}
    </form>
  );
}

function initialParams(action: ActionKind, versions: string[]): Record<string, string | boolean> {
  if (action === 'weighted-routing') {
    const each = Math.floor(100 / Math.max(1, versions.length));
    return Object.fromEntries(versions.map((v, i) => [`weight:${v}`, String(i === 0 ? 100 - each * (versions.length - 1) : each)]));
  }
  if (action === 'matching-routing') return { header: 'end-user', headerMatch: 'exact', headerValue: '', subset: versions[versions.length - 1] ?? '', defaultSubset: versions[0] ?? '' };
  if (action === 'fault-injection') return { delayPercent: '', fixedDelay: '', abortPercent: '100', httpStatus: '500' };
  if (action === 'timeouts') return { timeout: '3s', attempts: '2', perTryTimeout: '', retryOn: '' };
  if (action === 'circuit-breaker') return { maxConnections: '100', http1MaxPendingRequests: '10', consecutive5xxErrors: '5', interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: '100' };
  return {};
}

function toParams(action: ActionKind, p: Record<string, string | boolean>, versions: string[]): ActionRequest['params'] {
  const num = (k: string) => (p[k] === '' || p[k] === undefined ? undefined : Number(p[k]));
  const str = (k: string) => (p[k] ? String(p[k]) : undefined);
  switch (action) {
    case 'weighted-routing':
      return { weights: Object.fromEntries(versions.map((v) => [v, num(`weight:${v}`) ?? 0])), tcp: !!p.tcp };
    case 'matching-routing': {
      const match: Record<string, unknown> = {};
      if (str('header') && str('headerValue')) match.headers = { [String(p.header)]: { [String(p.headerMatch)]: String(p.headerValue) } };
      if (str('uriPrefix')) match.uri = { prefix: String(p.uriPrefix) };
      if (str('method')) match.method = String(p.method).toUpperCase();
      return { rules: [{ match, subset: String(p.subset) }], defaultSubset: String(p.defaultSubset) };
    }
    case 'fault-injection':
      return {
        ...(num('delayPercent') !== undefined && str('fixedDelay') ? { delay: { percent: num('delayPercent')!, fixedDelay: String(p.fixedDelay) } } : {}),
        ...(num('abortPercent') !== undefined && num('httpStatus') !== undefined ? { abort: { percent: num('abortPercent')!, httpStatus: num('httpStatus')! } } : {}),
      };
    case 'timeouts':
      return { timeout: str('timeout'), ...(num('attempts') !== undefined ? { retries: { attempts: num('attempts')!, perTryTimeout: str('perTryTimeout'), retryOn: str('retryOn') } } : {}) };
    case 'circuit-breaker':
      return {
        maxConnections: num('maxConnections'),
        http1MaxPendingRequests: num('http1MaxPendingRequests'),
        consecutive5xxErrors: num('consecutive5xxErrors'),
        interval: str('interval'),
        baseEjectionTime: str('baseEjectionTime'),
        maxEjectionPercent: num('maxEjectionPercent'),
      };
    default:
      return {};
  }
}

/** Actions whose resources are in force (for one service, or all), each with Undo. */
export function ActionsInForce({ namespace, service, onChange, refresh = 0 }: { namespace?: string; service?: string; onChange?: () => void; refresh?: number }) {
  const list = useJson<ActionRecord[]>(consoleApi(`actions?seen=${refresh}`), 10_000);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | undefined>();
  const shown = (list.data ?? []).filter((a) => (!namespace || a.namespace === namespace) && (!service || a.service === service));
  const undo = async (a: ActionRecord) => {
    setMessage(undefined);
    try {
      const plan = await postJson<UndoPlan>(consoleApi('actions/undo'), { id: a.id });
      if (plan.yaml) await applyYaml(plan.yaml);
      if (plan.deleteYaml) await deleteYaml(plan.deleteYaml);
      setMessage({ ok: true, text: `Undone ${a.action} on ${a.service}: ${plan.summary}` });
      list.reload();
      onChange?.();
    } catch (err) {
      setMessage({ ok: false, text: (err as Error).message });
    }
  };
  return (
    <section aria-label="Actions in force">
      <h3>Actions in force</h3>
      {message && (
        <p class={message.ok ? 'ok' : 'errors'} role={message.ok ? 'status' : 'alert'}>
          {message.text}
        </p>
      )}
      {shown.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Action</th>
              <th>Service</th>
              <th>Wrote</th>
              <th>At</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {shown.map((a) => (
              <tr>
                <td>{a.action}</td>
                <td>
                  {a.namespace}/{a.service}
                </td>
                <td>{a.resources.map((r) => `${r.kind} ${r.name}`).join(', ')}</td>
                <td>{a.at ? new Date(a.at).toLocaleTimeString() : ''}</td>
                <td>
                  <button type="button" class="secondary" onClick={() => undo(a)} aria-label={`Undo ${a.action} on ${a.service}`}>
                    Undo
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
