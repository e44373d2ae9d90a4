#!/usr/bin/env node
// Entry point of the `ferry` CLI: registers tsx so the TypeScript sources run as they are,
// then hands over to ops/cli.ts.
import { register } from 'tsx/esm/api';
register();
await import('../ops/cli.ts');
