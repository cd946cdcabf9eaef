#!/usr/bin/env node
/**
 * protoc/buf plugin: writes openapi.json for the REST routes of the files to generate.
 * Runs offline on @bufbuild/protobuf alone (already a dependency): it reads the
 * CodeGeneratorRequest, resolves google.api.http through the descriptors the request carries,
 * so any service whose methods carry the annotation appears without a change here.
 */
import { create, createFileRegistry, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  CodeGeneratorRequestSchema,
  CodeGeneratorResponseSchema,
  CodeGeneratorResponse_Feature,
  FileDescriptorSetSchema,
} from '@bufbuild/protobuf/wkt';
import { buildDocument } from './document.mjs';
import { HEADER } from './header.mjs';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = fromBinary(CodeGeneratorRequestSchema, new Uint8Array(Buffer.concat(chunks)));

let response;
try {
  const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: request.protoFile }));
  const http = registry.getExtension('google.api.http');
  if (http === undefined) throw new Error('google/api/annotations.proto is not among the inputs: no google.api.http to read');
  const files = request.fileToGenerate.map((name) => registry.getFile(name.replace(/\.proto$/, '')) ?? registry.getFile(name));
  const doc = buildDocument(files.filter(Boolean), http, HEADER);
  response = create(CodeGeneratorResponseSchema, {
    supportedFeatures: BigInt(CodeGeneratorResponse_Feature.PROTO3_OPTIONAL),
    file: [{ name: 'openapi.json', content: `${JSON.stringify(doc, null, 2)}\n` }],
  });
} catch (err) {
  response = create(CodeGeneratorResponseSchema, { error: err instanceof Error ? err.message : String(err) });
}
process.stdout.write(toBinary(CodeGeneratorResponseSchema, response));
