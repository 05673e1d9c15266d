/** Help text shared by `sinew analyze` and its lazily loaded implementation. */
export const analyzeExitCodes = `Exit codes:
  0  no errors (warnings allowed)
  1  at least one error, from validation or from analysis
  2  usage error (unknown option, missing -f)`;
