/**
 * Where the mesh CA lives in the control plane's state directory: `<state dir>/ca`. Its own
 * module so that the runner and the CLI can name it without loading the CA (and its X.509
 * library).
 */
export const CA_DIR = 'ca';
