/** The example stacks. */
export * from './common';
export * from './developer-boxes';
export * from './batch-workers';
export * from './fleet';
