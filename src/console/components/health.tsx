import type { Health } from '../../api/console.js';

const WORDS: Record<Health, string> = { healthy: 'Healthy', degraded: 'Degraded', failure: 'Failure', na: 'No data' };

export function HealthBadge({ health }: { health: Health }) {
  return <span class={`health ${health}`}>{WORDS[health]}</span>;
}

export const rate = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2));
export const percent = (v: number) => `${v >= 10 ? v.toFixed(0) : v.toFixed(1)}%`;
export const ms = (v: number | undefined) => (v === undefined ? '-' : v >= 100 ? `${v.toFixed(0)}ms` : `${v.toFixed(1)}ms`);
