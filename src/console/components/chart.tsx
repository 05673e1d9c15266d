/** A time-series chart (uPlot): one or more lines sharing the x axis. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Points } from '../../api/console.js';

const COLORS = ['#0b62c4', '#c62828', '#2e7d32', '#b26a00'];

export function Chart({ title, series, unit }: { title: string; series: { label: string; points: Points }[]; unit: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const xs = (series[0]?.points ?? []).map((p) => p[0] / 1000);
    const data = [xs, ...series.map((s) => s.points.map((p) => p[1]))] as uPlot.AlignedData;
    const plot = new uPlot(
      {
        width: Math.max(300, el.clientWidth - 8),
        height: 180,
        series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false }))],
        axes: [{}, { label: unit, size: 60 }],
        legend: { show: true },
      },
      data,
      el,
    );
    return () => plot.destroy();
  }, [series, unit]);
  const last = series.map((s) => {
    const v = [...s.points].reverse().find((p) => p[1] !== null)?.[1];
    return `${s.label} ${v === undefined || v === null ? 'no data' : `${v} ${unit}`}`;
  });
  return (
    <figure class="chart" aria-label={`${title}: latest ${last.join(', ')}`}>
      <figcaption>
        <strong>{title}</strong>
      </figcaption>
      <div ref={box} />
    </figure>
  );
}
