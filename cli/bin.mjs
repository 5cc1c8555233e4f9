#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, resolved from the project's own node_modules.
import { register } from "tsx/esm/api";

register();
await import("./patron.ts");
