import { ScalarType } from '@bufbuild/protobuf';
import { commentOf } from './comments.mjs';

/**
 * JSON Schemas (OpenAPI 3.1) for proto messages as proto3 JSON carries them: lowerCamelCase
 * names, 64-bit integers and bytes as strings, enums by name, well-known types in their
 * special JSON forms. Schemas are collected by full proto name into `schemas`, only for the
 * messages a route reaches.
 */

export const STATUS = 'google.rpc.Status';
export const ref = (name) => ({ $ref: `#/components/schemas/${name}` });

const INT64 = { type: 'string', format: 'int64', pattern: '^-?[0-9]+$' };
const UINT64 = { type: 'string', format: 'uint64', pattern: '^[0-9]+$' };
const INT32 = { type: 'integer', format: 'int32', minimum: -(2 ** 31), maximum: 2 ** 31 - 1 };
const UINT32 = { type: 'integer', format: 'uint32', minimum: 0, maximum: 2 ** 32 - 1 };
// Standard or URL-safe alphabet, padding optional: proto3 JSON parsers accept all four.
const BYTES = { type: 'string', format: 'byte', pattern: '^[A-Za-z0-9+/_-]*={0,2}$' };
const NUMBER = { type: 'number' };

const SCALARS = {
  [ScalarType.DOUBLE]: NUMBER,
  [ScalarType.FLOAT]: NUMBER,
  [ScalarType.INT64]: INT64,
  [ScalarType.SINT64]: INT64,
  [ScalarType.SFIXED64]: INT64,
  [ScalarType.UINT64]: UINT64,
  [ScalarType.FIXED64]: UINT64,
  [ScalarType.INT32]: INT32,
  [ScalarType.SINT32]: INT32,
  [ScalarType.SFIXED32]: INT32,
  [ScalarType.UINT32]: UINT32,
  [ScalarType.FIXED32]: UINT32,
  [ScalarType.BOOL]: { type: 'boolean' },
  [ScalarType.STRING]: { type: 'string' },
  [ScalarType.BYTES]: BYTES,
};

export const scalarSchema = (scalar) => ({ ...SCALARS[scalar] });

/** The error body of every route: grpc-gateway's google.rpc.Status. */
const STATUS_SCHEMA = {
  type: 'object',
  description:
    'The error body of every route (google.rpc.Status, as grpc-gateway writes it). `code` is the gRPC code number; ' +
    'the HTTP status follows grpc-gateway\'s mapping (INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403, ' +
    'NOT_FOUND 404, RESOURCE_EXHAUSTED 429, UNIMPLEMENTED 501, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, ...).',
  properties: {
    code: { ...INT32, description: 'The gRPC status code (google.rpc.Code).' },
    message: { type: 'string', description: 'A developer-facing error message.' },
    details: { type: 'array', items: ref('google.protobuf.Any'), description: 'Error details, if any.' },
  },
  required: ['code', 'message'],
};

/** Well-known types with a JSON form of their own (and google.rpc.Status, always the same). */
const SPECIAL = {
  'google.protobuf.Any': {
    type: 'object',
    description: 'Any message, with "@type" naming it (proto3 JSON form of google.protobuf.Any).',
    properties: { '@type': { type: 'string' } },
    required: ['@type'],
    additionalProperties: true,
  },
  'google.protobuf.Timestamp': { type: 'string', format: 'date-time' },
  'google.protobuf.Duration': { type: 'string', pattern: '^-?[0-9]+(\\.[0-9]{1,9})?s$' },
  'google.protobuf.FieldMask': { type: 'string' },
  'google.protobuf.Empty': { type: 'object', properties: {} },
  'google.protobuf.Struct': { type: 'object', additionalProperties: true },
  'google.protobuf.Value': {},
  'google.protobuf.ListValue': { type: 'array', items: {} },
  'google.protobuf.DoubleValue': NUMBER,
  'google.protobuf.FloatValue': NUMBER,
  'google.protobuf.Int64Value': INT64,
  'google.protobuf.UInt64Value': UINT64,
  'google.protobuf.Int32Value': INT32,
  'google.protobuf.UInt32Value': UINT32,
  'google.protobuf.BoolValue': { type: 'boolean' },
  'google.protobuf.StringValue': { type: 'string' },
  'google.protobuf.BytesValue': BYTES,
  [STATUS]: STATUS_SCHEMA,
};

/** Whether a message's JSON form is a single string, number or boolean (so it fits a query parameter). */
export const isPrimitive = (typeName) => ['string', 'number', 'integer', 'boolean'].includes(SPECIAL[typeName]?.type);

const describe = (schema, desc) => {
  const text = commentOf(desc);
  return text === undefined ? schema : { ...schema, description: text };
};

export class SchemaSet {
  /** Component schemas by name, filled as messages are reached. */
  schemas = {};

  /** A $ref to the message's schema, adding it (and what it reaches) on first use. */
  message(desc) {
    const name = desc.typeName;
    if (this.schemas[name] === undefined) {
      if (SPECIAL[name] !== undefined) {
        this.schemas[name] = structuredClone(SPECIAL[name]);
        if (name === STATUS) this.message({ typeName: 'google.protobuf.Any' });
      } else {
        // Placeholder first: recursive messages refer to themselves.
        this.schemas[name] = {};
        this.schemas[name] = this.object(desc, desc.fields);
      }
    }
    return ref(name);
  }

  /** The status schema, whether or not any proto names it. */
  status() {
    return this.message({ typeName: STATUS });
  }

  /** An object schema of `fields` of `desc` (all of them, or those left after path parameters). */
  object(desc, fields) {
    const properties = {};
    for (const f of fields) properties[f.jsonName] = this.field(f);
    let schema = { type: 'object', properties };
    // protobuf-es leaves proto3 `optional`'s synthetic oneofs out of `oneofs`: these are real groups.
    const notes = desc.oneofs
      .filter((o) => o.fields.some((f) => fields.includes(f)))
      .map((o) => `At most one of ${o.fields.map((f) => `\`${f.jsonName}\``).join(', ')} (oneof ${o.name}).`);
    schema = describe(schema, desc);
    if (notes.length > 0) schema.description = [schema.description, ...notes].filter(Boolean).join('\n\n');
    return schema;
  }

  field(f) {
    let schema;
    switch (f.fieldKind) {
      case 'scalar':
        schema = scalarSchema(f.scalar);
        break;
      case 'enum':
        schema = this.enumSchema(f.enum);
        break;
      case 'message':
        schema = this.message(f.message);
        break;
      case 'list':
        schema = {
          type: 'array',
          items: f.listKind === 'scalar' ? scalarSchema(f.scalar) : f.listKind === 'enum' ? this.enumSchema(f.enum) : this.message(f.message),
        };
        break;
      case 'map':
        schema = {
          type: 'object',
          additionalProperties: f.mapKind === 'scalar' ? scalarSchema(f.scalar) : f.mapKind === 'enum' ? this.enumSchema(f.enum) : this.message(f.message),
        };
        break;
    }
    // OpenAPI 3.1 lets a $ref carry a description beside it.
    return describe(schema, f);
  }

  enumSchema(e) {
    const name = e.typeName;
    if (this.schemas[name] === undefined) {
      this.schemas[name] = describe({ type: 'string', enum: e.values.map((v) => v.name) }, e);
    }
    return ref(name);
  }
}
