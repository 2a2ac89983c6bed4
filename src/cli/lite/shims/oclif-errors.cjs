'use strict';
/* global module */
// Stands in for oclif's error modules (lib/errors, lib/parser/errors) in the fast-start bundle.
// Whatever oclif's parser or flag parsers would report, they construct one of these instead: an
// error marked "needs oclif", on which bin/run.js runs the same command line again through oclif
// itself, which reports it exactly as always. No command has run when this is thrown.
const NEEDS_OCLIF = Symbol.for('prismctl.needs-oclif');
const classes = new Map();
module.exports = new Proxy(
  {},
  {
    get(_, name) {
      if (name === '__esModule') return false;
      if (typeof name !== 'string') return undefined;
      let cls = classes.get(name);
      if (!cls) {
        cls = class extends Error {
          constructor(message) {
            super(typeof message === 'string' ? message : `oclif ${name}`);
            this.name = name;
            this[NEEDS_OCLIF] = true;
          }
        };
        classes.set(name, cls);
      }
      return cls;
    },
  },
);
