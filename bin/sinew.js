#!/usr/bin/env node
// The `sinew` command. Sinew is written in TypeScript and runs from source through tsx's
// loader, so `npx sinew` works straight after `npm ci` with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv);
