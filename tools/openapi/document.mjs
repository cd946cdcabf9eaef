import { getOption, hasOption } from '@bufbuild/protobuf';
import { commentOf } from './comments.mjs';
import { SchemaSet, isPrimitive, ref, scalarSchema } from './schemas.mjs';

/**
 * An OpenAPI 3.1 document from the `google.api.http` annotations of the given files, with the
 * conventions grpc-gateway's bridge (and ours) follows: path variables are request fields,
 * `body: "*"` is the request minus its path fields, the other fields of a body-less request are
 * query parameters, a server stream is newline-delimited `{"result": ...}` objects, and every
 * error is a google.rpc.Status.
 */

const VERBS = new Set(['get', 'put', 'post', 'delete', 'patch']);
// Custom verbs OpenAPI has a slot for; others cannot be described and are left out.
const CUSTOM_VERBS = new Set(['head', 'options', 'trace']);

export function buildDocument(files, httpExtension, header) {
  const set = new SchemaSet();
  const paths = {};
  const tags = [];
  for (const file of [...files].sort((a, b) => a.name.localeCompare(b.name))) {
    for (const service of file.services) {
      let routed = false;
      for (const method of service.methods) {
        if (!hasOption(method, httpExtension)) continue;
        const rule = getOption(method, httpExtension);
        [rule, ...rule.additionalBindings].forEach((binding, i) => {
          const route = routeOf(binding);
          if (route === undefined) return;
          const { path, variables } = parseTemplate(route.path, method);
          paths[path] ??= {};
          if (paths[path][route.verb] !== undefined) {
            throw new Error(`${route.verb.toUpperCase()} ${path} is bound twice (again by ${method.parent.typeName}.${method.name})`);
          }
          paths[path][route.verb] = operation(set, service, method, binding, variables, i);
          routed = true;
        });
      }
      if (routed) {
        const description = commentOf(service);
        tags.push({ name: service.name, ...(description ? { description } : {}) });
      }
    }
  }
  set.status();
  return {
    openapi: '3.1.0',
    info: header.info,
    tags,
    security: [{ [header.securityName]: [] }],
    paths,
    components: {
      securitySchemes: { [header.securityName]: header.securityScheme },
      schemas: Object.fromEntries(Object.entries(set.schemas).sort(([a], [b]) => a.localeCompare(b))),
    },
  };
}

function routeOf(binding) {
  const { case: kind, value } = binding.pattern;
  if (kind === undefined) return undefined;
  if (kind === 'custom') {
    const verb = value.kind.toLowerCase();
    return CUSTOM_VERBS.has(verb) ? { verb, path: value.path } : undefined;
  }
  return VERBS.has(kind) ? { verb: kind, path: value } : undefined;
}

/** `/v1/{name=projects/*}/x:verb` → `/v1/{name}/x:verb` and the variables' fields. */
function parseTemplate(template, method) {
  const variables = [];
  const path = template.replace(/\{([^}=]+)(=[^}]*)?\}/g, (_, name) => {
    variables.push({ name, fields: fieldPath(method.input, name, method) });
    return `{${name}}`;
  });
  return { path, variables };
}

function fieldPath(message, dotted, method) {
  const fields = [];
  let current = message;
  for (const part of dotted.split('.')) {
    const f = current?.fields.find((x) => x.name === part);
    if (f === undefined) throw new Error(`${method.parent.typeName}.${method.name}: path variable {${dotted}} names no field of ${message.typeName}`);
    fields.push(f);
    current = f.fieldKind === 'message' ? f.message : undefined;
  }
  return fields;
}

function operation(set, service, method, binding, variables, index) {
  const comment = commentOf(method);
  const op = {
    operationId: `${service.name}_${method.name}${index === 0 ? '' : index + 1}`,
    tags: [service.name],
    summary: comment ? firstSentence(comment) : method.name,
    ...(comment && comment !== firstSentence(comment) ? { description: comment } : {}),
  };
  const parameters = variables.map(({ name, fields }) => {
    const f = fields.at(-1);
    const description = commentOf(f);
    return { name, in: 'path', required: true, schema: paramSchema(set, f), ...(description ? { description } : {}) };
  });
  // Top-level fields bound to the path are left out of the body and the query.
  const inPath = new Set(variables.filter((v) => v.fields.length === 1).map((v) => v.fields[0]));
  const input = method.input;
  if (binding.body === '*') {
    const rest = input.fields.filter((f) => !inPath.has(f));
    const schema = rest.length === input.fields.length ? set.message(input) : bodySchema(set, service, method, input, rest);
    op.requestBody = { required: true, content: { 'application/json': { schema } } };
  } else {
    let bodyField;
    if (binding.body !== '') {
      bodyField = input.fields.find((f) => f.name === binding.body);
      if (bodyField === undefined) throw new Error(`${method.parent.typeName}.${method.name}: body "${binding.body}" names no field`);
      op.requestBody = { required: true, content: { 'application/json': { schema: set.field(bodyField) } } };
    }
    parameters.push(...queryParameters(set, input, (f) => !inPath.has(f) && f !== bodyField, '', new Set([input.typeName])));
  }
  if (parameters.length > 0) op.parameters = parameters;
  op.responses = {
    200: { description: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming' ? streamNote : 'A successful response.', content: { 'application/json': { schema: responseSchema(set, method, binding) } } },
    default: { description: 'An error, as a google.rpc.Status.', content: { 'application/json': { schema: set.status() } } },
  };
  return op;
}

const streamNote =
  'A stream of newline-delimited JSON objects, each `{"result": <message>}`; a failure after the stream started ends it with `{"error": <google.rpc.Status>}`.';

function responseSchema(set, method, binding) {
  let schema = set.message(method.output);
  if (binding.responseBody !== '') {
    const f = method.output.fields.find((x) => x.name === binding.responseBody);
    if (f === undefined) throw new Error(`${method.parent.typeName}.${method.name}: response_body "${binding.responseBody}" names no field`);
    schema = set.field(f);
  }
  if (method.methodKind !== 'server_streaming' && method.methodKind !== 'bidi_streaming') return schema;
  const name = `StreamResult.${method.output.typeName}`;
  set.schemas[name] ??= {
    type: 'object',
    description: `One line of a ${method.output.typeName} stream.`,
    properties: { result: schema, error: set.status() },
  };
  return ref(name);
}

/** The body of `body: "*"` when path variables took some fields: the request minus those. */
function bodySchema(set, service, method, input, fields) {
  const name = `${service.typeName}.${method.name}Body`;
  set.schemas[name] ??= set.object(input, fields);
  return ref(name);
}

function paramSchema(set, f) {
  if (f.fieldKind === 'scalar') return scalarSchema(f.scalar);
  if (f.fieldKind === 'enum') return set.enumSchema(f.enum);
  if (f.fieldKind === 'list' && f.listKind === 'scalar') return { type: 'array', items: scalarSchema(f.scalar) };
  if (f.fieldKind === 'list' && f.listKind === 'enum') return { type: 'array', items: set.enumSchema(f.enum) };
  if (f.fieldKind === 'message' && isPrimitive(f.message.typeName)) return set.message(f.message);
  return undefined;
}

/**
 * Query parameters for the fields of a request without body: scalars, enums and repeated
 * ones by JSON name (repeated: `?uids=a&uids=b`), message fields as dotted names; maps and
 * repeated messages cannot be given in a query and are left out, as grpc-gateway does.
 */
function queryParameters(set, message, keep, prefix, seen) {
  const out = [];
  for (const f of message.fields) {
    if (!keep(f)) continue;
    const name = `${prefix}${f.jsonName}`;
    const schema = paramSchema(set, f);
    if (schema !== undefined) {
      const description = commentOf(f);
      out.push({ name, in: 'query', required: false, schema, ...(f.fieldKind === 'list' ? { explode: true } : {}), ...(description ? { description } : {}) });
    } else if (f.fieldKind === 'message' && !seen.has(f.message.typeName)) {
      out.push(...queryParameters(set, f.message, () => true, `${name}.`, new Set([...seen, f.message.typeName])));
    }
  }
  return out;
}

function firstSentence(text) {
  const first = text.split(/\n\s*\n/)[0].replace(/\s+/g, ' ');
  const m = /^(.+?[.!?])(\s|$)/.exec(first);
  return m ? m[1] : first;
}
