/** Injection tokens for process-wide values. */
export const KURA_CONFIG = Symbol('KURA_CONFIG');
export const LOGGER = Symbol('LOGGER');
