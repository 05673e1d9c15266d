import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { getJson } from './api.js';

export interface Loaded<T> {
  data?: T;
  error?: string;
  loading: boolean;
  reload: () => void;
}

/** Fetches `path` (again when it changes, and every `refreshMs` when set). */
export function useJson<T>(path: string | undefined, refreshMs?: number): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: string; loading: boolean }>({ loading: !!path });
  const [tick, setTick] = useState(0);
  const current = useRef(path);
  current.current = path;
  useEffect(() => {
    if (!path) return;
    let cancelled = false;
    setState((s) => ({ ...s, loading: true }));
    getJson<T>(path).then(
      (data) => !cancelled && setState({ data, loading: false }),
      (err: Error) => !cancelled && setState((s) => ({ data: s.data, error: err.message, loading: false })),
    );
    return () => {
      cancelled = true;
    };
  }, [path, tick]);
  useEffect(() => {
    if (!refreshMs) return;
    const t = setInterval(() => setTick((n) => n + 1), refreshMs);
    return () => clearInterval(t);
  }, [refreshMs, path]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { ...state, reload };
}
