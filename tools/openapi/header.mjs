/** What the document says about pushwire itself; everything else comes from the protos. */
export const HEADER = {
  info: {
    title: 'pushwire REST bridge',
    version: 'v1',
    description:
      'The REST bridge of pushwire\'s gRPC server API, generated from the `google.api.http` annotations in proto/ ' +
      '(the same ones the bridge serves). Bodies are proto3 JSON: lowerCamelCase names (the proto names are accepted too), ' +
      '64-bit integers as strings, bytes as base64. Every error is a google.rpc.Status. See docs/api.md.',
    license: { name: 'MIT', identifier: 'MIT' },
  },
  securityName: 'bearerKey',
  securityScheme: {
    type: 'http',
    scheme: 'bearer',
    description:
      'A project\'s API key from the projects file, as `Authorization: Bearer <key>`. When no project lists a key the API ' +
      'is open and the header is ignored; a missing key is UNAUTHENTICATED (401), a key of another project or method ' +
      'PERMISSION_DENIED (403).',
  },
};
