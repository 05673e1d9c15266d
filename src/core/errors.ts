/**
 * Coded errors (STYLE.md 6): every failure Sinew raises has a class, a stable `code`
 * and a message that says what to do next. Never throw strings.
 */
export class SinewError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SinewError';
    this.code = code;
  }
}

/** Input that cannot be read at all (not YAML, not UTF-8, too big, too deep). */
export class InputError extends SinewError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'InputError';
  }
}

/** A configuration that fails validation; carries every diagnostic, not only the first. */
export class InvalidConfigError extends SinewError {
  readonly diagnostics: readonly unknown[];

  constructor(message: string, diagnostics: readonly unknown[]) {
    super('SNW_ERR_INVALID_CONFIG', message);
    this.name = 'InvalidConfigError';
    this.diagnostics = diagnostics;
  }
}
