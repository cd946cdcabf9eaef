/**
 * Proto comments for descriptions. protobuf-es keeps each file's SourceCodeInfo but no path per
 * descriptor, so the path (descriptor.proto field numbers and indexes) is rebuilt from the parents.
 */

// Field numbers in descriptor.proto: FileDescriptorProto.message_type = 4, enum_type = 5, service = 6;
// DescriptorProto.field = 2, nested_type = 3, enum_type = 4; ServiceDescriptorProto.method = 2.
function pathOf(desc) {
  switch (desc.kind) {
    case 'message':
      return desc.parent === undefined
        ? [4, desc.file.proto.messageType.indexOf(desc.proto)]
        : [...pathOf(desc.parent), 3, desc.parent.proto.nestedType.indexOf(desc.proto)];
    case 'enum':
      return desc.parent === undefined
        ? [5, desc.file.proto.enumType.indexOf(desc.proto)]
        : [...pathOf(desc.parent), 4, desc.parent.proto.enumType.indexOf(desc.proto)];
    case 'field':
      return [...pathOf(desc.parent), 2, desc.parent.proto.field.indexOf(desc.proto)];
    case 'service':
      return [6, desc.file.proto.service.indexOf(desc.proto)];
    case 'rpc':
      return [...pathOf(desc.parent), 2, desc.parent.proto.method.indexOf(desc.proto)];
    default:
      return undefined;
  }
}

/** The leading comment of a descriptor (the trailing one if there is none), tidied; undefined if none. */
export function commentOf(desc) {
  const path = pathOf(desc);
  let owner = desc;
  while (owner.file === undefined && owner.parent !== undefined) owner = owner.parent;
  const locations = owner.file?.proto.sourceCodeInfo?.location;
  if (path === undefined || locations === undefined) return undefined;
  const loc = locations.find((l) => l.path.length === path.length && l.path.every((n, i) => n === path[i]));
  const text = loc?.leadingComments || loc?.trailingComments;
  if (!text) return undefined;
  const lines = text.split('\n').map((l) => l.replace(/^ /, '').trimEnd());
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  return lines.join('\n').trim() || undefined;
}
