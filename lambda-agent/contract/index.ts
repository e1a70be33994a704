/** The contract shared by the constructs, the watchdog, the agent and the CLI. */
export * from './tags';
export * from './env';
export * from './ids';
export * from './state';
export * from './events';
