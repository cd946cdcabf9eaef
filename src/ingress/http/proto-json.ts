import { invalidArgument } from '../../core/errors.js';
import { decodeBase64 } from './base64.js';

export type FieldKind = 'string' | 'bytes' | 'messages' | 'message' | 'messageMap' | 'strings' | 'uint32' | 'uint64' | 'bool';

export interface FieldSpec {
  /** The proto field name (snake_case); its lowerCamelCase JSON name is derived. */
  name: string;
  kind: FieldKind;
  /** For `messages` (a repeated message field), `message` and `messageMap` (map<string, Message>): the (value) type and its fields. */
  of?: { typeName: string; fields: readonly FieldSpec[] };
}

const jsonName = (name: string): string => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

// Each message's fields by JSON name and by proto name, built once per spec: decoding runs per request.
const indexes = new WeakMap<readonly FieldSpec[], Map<string, FieldSpec>>();

function fieldIndex(fields: readonly FieldSpec[]): Map<string, FieldSpec> {
  let index = indexes.get(fields);
  if (index === undefined) {
    index = new Map();
    // Later fields first, so that an earlier field wins a shared name, as a linear search would.
    for (const f of [...fields].reverse()) {
      index.set(jsonName(f.name), f);
      index.set(f.name, f);
    }
    indexes.set(fields, index);
  }
  return index;
}

/**
 * Strict proto3 JSON decoding of one flat message: lowerCamelCase or original field names,
 * null as the default value, unknown fields and wrong types rejected (INVALID_ARGUMENT),
 * as grpc-gateway's default unmarshaler does.
 */
export function decodeProtoJson(body: unknown, typeName: string, fields: readonly FieldSpec[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalidArgument(`invalid JSON for ${typeName}: expected an object`);
  }
  const out: Record<string, unknown> = {};
  const seen = new Set<string>();
  const index = fieldIndex(fields);
  for (const [key, value] of Object.entries(body)) {
    const field = index.get(key);
    if (field === undefined) throw invalidArgument(`unknown field "${key}" in ${typeName}`);
    if (seen.has(field.name)) throw invalidArgument(`duplicate field "${key}" in ${typeName}`);
    seen.add(field.name);
    if (value === null) continue;
    if (field.kind === 'strings') {
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
        throw invalidArgument(`invalid value for repeated string field ${field.name}: expected an array of strings`);
      }
      out[field.name] = value;
      continue;
    }
    if (field.kind === 'messages') {
      if (!Array.isArray(value)) throw invalidArgument(`invalid value for repeated field ${field.name}: expected an array`);
      const of = field.of!;
      out[field.name] = value.map((item, i) => {
        try {
          return decodeProtoJson(item, of.typeName, of.fields);
        } catch (err) {
          throw invalidArgument(`${field.name}[${i}]: ${(err as Error).message}`);
        }
      });
      continue;
    }
    if (field.kind === 'messageMap') {
      // proto3 JSON writes a map<string, Message> as an object of messages keyed by the map key.
      if (typeof value !== 'object' || Array.isArray(value)) throw invalidArgument(`invalid value for map field ${field.name}: expected an object`);
      const of = field.of!;
      const map: Record<string, Record<string, unknown>> = {};
      for (const [k, item] of Object.entries(value as Record<string, unknown>)) {
        try {
          map[k] = item === null ? {} : decodeProtoJson(item, of.typeName, of.fields);
        } catch (err) {
          throw invalidArgument(`${field.name}[${JSON.stringify(k)}]: ${(err as Error).message}`);
        }
      }
      out[field.name] = map;
      continue;
    }
    if (field.kind === 'message') {
      out[field.name] = decodeProtoJson(value, field.of!.typeName, field.of!.fields);
      continue;
    }
    if (field.kind === 'uint64') {
      // proto3 JSON: a decimal string, or a number; kept as the decimal string.
      const text = typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? String(value) : value;
      if (typeof text !== 'string' || !/^\d{1,20}$/.test(text) || BigInt(text) > 0xffffffffffffffffn) {
        throw invalidArgument(`invalid value for uint64 field ${field.name}: ${JSON.stringify(value)}`);
      }
      out[field.name] = text;
      continue;
    }
    if (field.kind === 'bool') {
      if (typeof value !== 'boolean') throw invalidArgument(`invalid value for bool field ${field.name}: ${JSON.stringify(value)}`);
      out[field.name] = value;
      continue;
    }
    if (field.kind === 'uint32') {
      // proto3 JSON: a number, or a decimal string.
      const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) {
        throw invalidArgument(`invalid value for uint32 field ${field.name}: ${JSON.stringify(value)}`);
      }
      out[field.name] = n;
      continue;
    }
    if (typeof value !== 'string') {
      throw invalidArgument(`invalid value for ${field.kind} field ${field.name}: ${JSON.stringify(value)}`);
    }
    if (field.kind === 'bytes') {
      const bytes = decodeBase64(value);
      if (bytes === undefined) throw invalidArgument(`invalid value for bytes field ${field.name}: not valid base64`);
      out[field.name] = bytes;
    } else {
      out[field.name] = value;
    }
  }
  return out;
}
