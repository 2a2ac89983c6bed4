/**
 * The Pattern SDK's version (docs/sdk.md, "Stability"). The major number changes only when an
 * export of `prismctl/sdk` changes incompatibly; a pattern module states the major it was built
 * against (`PatternDefinition.sdkVersion`) and a prismctl of another major refuses to load it.
 */
export const SDK_VERSION = '1.1.0';

/** The major number of SDK_VERSION. */
export const SDK_MAJOR = 1;
