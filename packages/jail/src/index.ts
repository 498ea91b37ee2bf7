/**
 * Kura's jail: untrusted work (upload parsers now, developers' code next) runs in a child process
 * that can be killed, with stated limits. See README.md beside this folder.
 */
export * from './jail.js';
export * from './child.js';
export * from './frames.js';
