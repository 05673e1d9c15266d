import type { CodeTable } from './types.js';

/** SNW01xx: structure, checked against each kind's schema (strict, like kubectl's strict field validation). */
export const structureCodes: CodeTable = {
  SNW0101: { level: 'error', name: 'WrongType', description: 'The field has the wrong type (for example a string where a number is expected).' },
  SNW0102: { level: 'error', name: 'MissingField', description: 'A required field is missing.' },
  SNW0103: { level: 'error', name: 'InvalidEnumValue', description: 'The value is not one of the allowed values; see the suggestion.' },
  SNW0104: { level: 'error', name: 'UnknownField', description: 'The field does not exist at this place in the schema; see the suggestion.' },
  SNW0105: { level: 'error', name: 'OutOfRange', description: 'The number is outside the range the field allows.' },
  SNW0106: { level: 'error', name: 'InvalidFormat', description: 'The string does not have the required form (duration, port, IP, CIDR, ...).' },
  SNW0107: { level: 'error', name: 'OneOfViolation', description: 'Exactly one (or at most one) of a set of fields may be set.' },
  SNW0108: { level: 'warning', name: 'DeprecatedField', description: 'The field is deprecated; the message names its replacement.' },
};
