/**
 * Every resource in force, its YAML editable: Validate shows what `sinew validate` and
 * `sinew analyze` say; Apply posts it to the config API (`sinew apply`), which refuses the
 * whole text on any validation error and keeps the config in force.
 */
import { useEffect, useState } from 'preact/hooks';
import type { ConfigList, ValidateResult } from '../../api/console.js';
import type { Diagnostic } from '../../api/diagnostics.js';
import { ApiError, applyYaml, consoleApi, postText } from '../api.js';
import { ActionsInForce } from '../components/actions.js';
import { Diagnostics } from '../components/diagnostics.js';
import { useJson } from '../hooks.js';
import { href } from '../router.js';

export function ConfigPage({ params }: { params: URLSearchParams }) {
  const list = useJson<ConfigList>(consoleApi('config'));
  const key = { kind: params.get('kind') ?? '', namespace: params.get('namespace') ?? '', name: params.get('name') ?? '' };
  const item = list.data?.items.find((i) => i.kind === key.kind && i.namespace === key.namespace && i.name === key.name);
  const isNew = params.get('new') === '1';
  const [text, setText] = useState('');
  const [result, setResult] = useState<{ ok: boolean; message: string; diagnostics: Diagnostic[] } | undefined>();
  useEffect(() => {
    setText(item?.yaml ?? '');
    setResult(undefined);
  }, [item?.yaml, isNew]);
  const validate = async () => {
    const r = await postText<ValidateResult>(consoleApi(`validate?namespace=${encodeURIComponent(key.namespace || 'default')}`), text);
    setResult({ ok: r.valid, message: r.valid ? (r.lines.length ? 'Valid, with findings:' : 'Valid: sinew validate and sinew analyze report nothing.') : 'Invalid: sinew validate reports errors.', diagnostics: [...r.diagnostics, ...r.analysis] });
  };
  const apply = async () => {
    try {
      const r = await applyYaml(text);
      setResult({ ok: true, message: `Applied (revision ${r.revision}): ${r.resources.map((x) => `${x.kind} ${x.name} ${x.result}`).join(', ')}`, diagnostics: r.diagnostics });
      list.reload();
    } catch (err) {
      setResult({ ok: false, message: `Refused: ${(err as Error).message}`, diagnostics: err instanceof ApiError ? err.diagnostics : [] });
    }
  };
  const byKind = new Map<string, ConfigList['items']>();
  for (const i of list.data?.items ?? []) byKind.set(i.kind, [...(byKind.get(i.kind) ?? []), i]);
  return (
    <>
      <h1>Config</h1>
      {list.data && (
        <section aria-label="Analysis">
          <p>
            Revision {list.data.revision} · {list.data.items.length} resources · sinew analyze: {list.data.findings.filter((d) => d.level === 'error').length} errors,{' '}
            {list.data.findings.filter((d) => d.level === 'warning').length} warnings
          </p>
          <Diagnostics diagnostics={list.data.findings} />
        </section>
      )}
      <div class="config-layout">
        <nav aria-label="Resources">
          <p>
            <a href={href('config', { new: 1 })}>New resource…</a>
          </p>
          {[...byKind].map(([kind, items]) => (
            <>
              <h3>{kind}</h3>
              <ul class="element-list">
                {items.map((i) => (
                  <li>
                    <a href={href('config', { kind: i.kind, namespace: i.namespace, name: i.name })} aria-current={i === item ? 'true' : undefined}>
                      {i.namespace ? `${i.namespace}/` : ''}
                      {i.name}
                    </a>
                    {i.findings.length > 0 && <span class="badge">{i.findings.length}</span>}
                    {i.action && <span class="badge">{i.action}</span>}
                  </li>
                ))}
              </ul>
            </>
          ))}
        </nav>
        <section aria-label="Editor">
          {item || isNew ? (
            <>
              <h2>{item ? `${item.kind} ${item.namespace}/${item.name}` : 'New resource'}</h2>
              {item && <Diagnostics diagnostics={item.findings} />}
              <label for="yaml-editor">YAML</label>
              <textarea id="yaml-editor" class="yaml" spellcheck={false} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
              <div class="row">
                <button type="button" class="secondary" onClick={validate}>
                  Validate
                </button>
                <button type="button" onClick={apply}>
                  Apply
                </button>
              </div>
              {result && (
                <div class={result.ok ? 'ok' : 'errors'} role={result.ok ? 'status' : 'alert'}>
                  <p>{result.message}</p>
                  <Diagnostics diagnostics={result.diagnostics} />
                </div>
              )}
            </>
          ) : (
            <p class="muted">Choose a resource to see and edit its YAML.</p>
          )}
          <ActionsInForce />
        </section>
      </div>
    </>
  );
}
