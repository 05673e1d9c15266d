import type { CodeTable } from './types.js';

/** SNW00xx: reading input. */
export const loaderCodes: CodeTable = {
  SNW0001: { level: 'error', name: 'UnreadableInput', description: 'The file or directory could not be read; check the path and permissions.' },
  SNW0002: { level: 'error', name: 'InvalidEncoding', description: 'The input is not UTF-8 text (binary data or a bad byte sequence); save it as UTF-8.' },
  SNW0003: { level: 'error', name: 'InputTooLarge', description: 'The input is larger than the limit Sinew reads (16 MiB per input); split it into smaller files.' },
  SNW0004: { level: 'error', name: 'YamlSyntaxError', description: 'The YAML or JSON does not parse; fix the syntax at the position shown.' },
  SNW0005: { level: 'error', name: 'YamlAliasLimit', description: 'The document expands too many YAML aliases (an alias bomb); write the values out.' },
  SNW0006: { level: 'error', name: 'NestingTooDeep', description: 'The document is nested deeper than any resource needs; it is rejected to protect the reader.' },
  SNW0007: { level: 'warning', name: 'EmptyInput', description: 'The input holds no documents; nothing was read from it.' },
  SNW0008: { level: 'error', name: 'NotAnObject', description: 'A document must be a mapping with apiVersion, kind, metadata and spec.' },
  SNW0009: { level: 'error', name: 'UnknownApiVersion', description: 'The apiVersion is not one Sinew reads for this kind; use one of those listed.' },
  SNW0010: { level: 'error', name: 'UnknownKind', description: 'The kind is not one Sinew reads; check the spelling.' },
  SNW0011: { level: 'error', name: 'MissingName', description: 'metadata.name is required.' },
  SNW0012: { level: 'error', name: 'InvalidName', description: 'metadata.name or metadata.namespace is not a valid Kubernetes name (lower-case RFC 1123).' },
  SNW0013: { level: 'error', name: 'DuplicateResource', description: 'The same Kind namespace/name appears twice in the input; the later one would silently win.' },
  SNW0014: { level: 'warning', name: 'IgnoredKind', description: 'A Kubernetes kind Sinew does not use (e.g. Deployment, ServiceAccount) was skipped.' },
};
