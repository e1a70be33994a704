/** Public entry of the constructs. */
export * from './self-management-policy';
export * from './self-managed-instance';
export { ValidationError, PolicyDocumentError } from './errors';
export { METADATA_OPTIONS } from './private/adopt';
export { HIBERNATION_FAMILIES } from './private/hibernation';
