#!/usr/bin/env node
// The `kura` command: the built CLI (npm ci builds the workspaces).
import '../dist/cli/main.js';
