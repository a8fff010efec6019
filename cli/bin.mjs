#!/usr/bin/env node
// @ts-check
// The pgwarden command. cli/launcher.mjs chooses the Node.js and the entry (bundle or sources) it runs.
import { launch } from './launcher.mjs';

await launch(process.argv.slice(2));
