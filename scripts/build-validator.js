#!/usr/bin/env node
// Precompiles the namespace validator with ajv's standalone code generation into dist/config, so
// the CLI does not compile the JSON Schema on every start. Runs after tsc (see `npm run build`).
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import standaloneCode from 'ajv/dist/standalone/index.js';

const root = resolve(fileURLToPath(import.meta.url), '../..');
const structural = await import(join(root, 'dist/config/structural.js'));
const ajv = structural.createNamespaceAjv({ source: true });
const code = standaloneCode.default(ajv, { NamespaceRequest: structural.NAMESPACE_REQUEST_REF });
writeFileSync(join(dirname(join(root, 'dist/config/structural.js')), structural.PRECOMPILED_VALIDATOR), code);
