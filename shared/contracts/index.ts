// The Glue adapter is not re-exported: import it from './glue-schema-registry' so bundles that do not use
// it do not carry the Glue client.
export * from './avro-codec';
export * from './cloudevents';
export * from './file-catalog-registry';
export * from './framing';
export * from './schema-registry';
