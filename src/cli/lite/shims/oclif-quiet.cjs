'use strict';
/* global module */
// Stands in for oclif's logger and help modules in the fast-start bundle: the parser only uses them
// for debug output and for error messages, which the fast path leaves to oclif (see oclif-errors.cjs).
const noop = () => noop;
module.exports = new Proxy({}, { get: (_, name) => (name === '__esModule' ? false : noop) });
