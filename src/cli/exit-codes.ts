/** Help text shared by `sinew analyze` and its lazily loaded implementation. */
export const analyzeExitCodes = `Exit codes:
  0  no errors (warnings allowed)
  1  at least one error, from validation or from analysis
  2  usage error (unknown option)
  3  the config in force could not be read (no running mesh and no -f, or its control plane did not answer)`;
