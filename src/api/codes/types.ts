/** The shape of a diagnostic code table (kept apart from diagnostics.ts so the tables don't import their index). */
export type DiagnosticLevel = 'error' | 'warning' | 'info';

export interface CodeInfo {
  /** The level a finding of this code has unless the rule says otherwise. */
  level: DiagnosticLevel;
  /** A short CamelCase name, like Istio's analyzer message names. */
  name: string;
  /** One sentence: what it means and what to do. */
  description: string;
}

export type CodeTable = Readonly<Record<string, CodeInfo>>;
